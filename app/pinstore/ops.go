package pinstore

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"keyport/proxymgr/pins"
)

// Record stores what a proxy saw in a tools/list answer (see
// proxymgr.Pins): trusted definitions become pins (unless the user
// already approved another definition of the name meanwhile: then it is
// held), new or changed ones are held for review, and held ones the
// server lists as approved again are dropped. It returns the flags of
// every recorded definition by tool name.
func (srv *Server) Record(rec pins.Record) (map[string][]pins.Flag, error) {
	if rec.Empty() {
		return nil, nil
	}
	flags := map[string][]pins.Flag{}
	var others map[string][]string
	flagsOf := func(f *File, o pins.Observed) []pins.Flag {
		if others == nil {
			others = srv.st.otherTools(srv.name)
		}
		fs := append(pins.Inspect(o.Definition), pins.Shadowing(o.Name, others)...)
		if f.Recovered != nil && !f.Recovered.Reviewed {
			fs = append(fs, pins.Flag{Kind: pins.FlagUnreadable, Detail: "the approved definitions could not be read (" + f.Recovered.Error + "); review every tool"})
		}
		return fs
	}
	err := srv.edit(func(f *File) (bool, error) {
		changed := false
		now := time.Now()
		first := f.TrustedAt == nil
		hold := func(o pins.Observed) {
			if p, ok := f.Held[o.Name]; ok && p.Hash == o.Hash {
				return
			}
			if p, ok := f.Tools[o.Name]; ok && p.Hash == o.Hash {
				return // approved meanwhile
			}
			fs := flagsOf(f, o)
			flags[o.Name] = fs
			f.Held[o.Name] = &Pending{Hash: o.Hash, Definition: o.Definition, SeenAt: now, Flags: fs}
			changed = true
		}
		for _, o := range rec.Trust {
			if p, ok := f.Tools[o.Name]; ok {
				if p.Hash != o.Hash {
					hold(o) // another process pinned another definition first
				}
				continue
			}
			fs := flagsOf(f, o)
			flags[o.Name] = fs
			f.Tools[o.Name] = &Pin{Hash: o.Hash, Definition: o.Definition, ApprovedAt: now, By: ByFirstUse, Flags: fs}
			delete(f.Held, o.Name)
			changed = true
		}
		if first && len(rec.Trust) > 0 {
			f.TrustedAt = &now
			changed = true
		}
		for _, o := range rec.Hold {
			hold(o)
		}
		for _, n := range rec.Resolved {
			if _, ok := f.Held[n]; ok {
				delete(f.Held, n)
				changed = true
			}
		}
		return changed, nil
	})
	return flags, err
}

// otherTools lists the approved tool names of every other server with a
// pin file, to flag a tool that shadows another server's.
func (st *Store) otherTools(except string) map[string][]string {
	out := map[string][]string{}
	for _, name := range st.Names() {
		if name == except {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(st.dir, fileName(name)))
		if err != nil {
			continue
		}
		var f struct {
			Tools map[string]json.RawMessage `json:"tools"`
		}
		if json.Unmarshal(raw, &f) != nil {
			continue
		}
		for t := range f.Tools {
			out[name] = append(out[name], t)
		}
	}
	return out
}

// heldNames are the names of the held tools of f, or of want (each of
// which must be held).
func heldNames(f *File, server string, want []string, all bool) ([]string, error) {
	if all {
		var names []string
		for n := range f.Held {
			names = append(names, n)
		}
		slices.Sort(names)
		return names, nil
	}
	for _, n := range want {
		if _, ok := f.Held[n]; !ok {
			if _, pinned := f.Tools[n]; pinned {
				return nil, fmt.Errorf("tool %q of %s has no change to review: its approved definition is the one Keyport last saw", n, server)
			}
			return nil, fmt.Errorf("tool %q of %s is not held: Keyport has not seen a tool of that name (run keyport tools %s)", n, server, server)
		}
	}
	return want, nil
}

// Approve makes the held definitions of tools (or of every held tool,
// with all) the approved ones.
func (srv *Server) Approve(tools []string, all bool) ([]Change, error) {
	var changes []Change
	err := srv.edit(func(f *File) (bool, error) {
		names, err := heldNames(f, srv.name, tools, all)
		if err != nil {
			return false, err
		}
		now := time.Now()
		for _, n := range names {
			h := f.Held[n]
			c := Change{Tool: n, NewHash: h.Hash}
			if old, ok := f.Tools[n]; ok {
				c.OldHash = old.Hash
			}
			f.Tools[n] = &Pin{Hash: h.Hash, Definition: h.Definition, ApprovedAt: now, By: ByUser, Flags: h.Flags}
			delete(f.Held, n)
			changes = append(changes, c)
		}
		if f.Recovered != nil && len(names) > 0 {
			f.Recovered.Reviewed = true
		}
		return len(names) > 0, nil
	})
	return changes, err
}

// Block keeps the held definitions of tools (or of every held tool)
// blocked: still hidden, no longer a change to review.
func (srv *Server) Block(tools []string, all bool) ([]Change, error) {
	var changes []Change
	err := srv.edit(func(f *File) (bool, error) {
		names, err := heldNames(f, srv.name, tools, all)
		if err != nil {
			return false, err
		}
		for _, n := range names {
			h := f.Held[n]
			c := Change{Tool: n, NewHash: h.Hash}
			if old, ok := f.Tools[n]; ok {
				c.OldHash = old.Hash
			}
			if !h.Blocked {
				h.Blocked = true
				changes = append(changes, c)
			}
		}
		if f.Recovered != nil && len(names) > 0 {
			f.Recovered.Reviewed = true
		}
		return len(changes) > 0 || (f.Recovered != nil && len(names) > 0), nil
	})
	return changes, err
}

// Reset forgets every pin of the server: the next list is trusted again.
// It returns how many approved definitions were forgotten.
func (srv *Server) Reset() (int, error) {
	n := 0
	err := srv.edit(func(f *File) (bool, error) {
		n = len(f.Tools)
		*f = *srv.newFile()
		return true, nil
	})
	return n, err
}

// trustAnnounceWithin bounds which first-use trusts are still news: pins
// made longer ago (by a Keyport from before the announcement existed) are
// not announced at a later start.
const trustAnnounceWithin = 24 * time.Hour

// MarkTrustAnnounced marks the first-use trust as announced and returns
// how many tools it pinned; 0 when there is nothing to announce (nothing
// trusted yet, already announced, or trusted over a day before now).
func (srv *Server) MarkTrustAnnounced(now time.Time) (int, error) {
	news := func(f *File) bool {
		return f.TrustedAt != nil && !f.TrustAnnounced && len(f.Tools) > 0 && now.Sub(*f.TrustedAt) < trustAnnounceWithin
	}
	if !news(srv.File()) {
		return 0, nil // nothing to write
	}
	n := 0
	err := srv.edit(func(f *File) (bool, error) {
		if !news(f) {
			return false, nil
		}
		f.TrustAnnounced, n = true, len(f.Tools)
		return true, nil
	})
	return n, err
}

// MarkNotified marks the held, unblocked tools not yet notified as
// notified and returns them (the change set to tell the user about).
func (srv *Server) MarkNotified() ([]string, error) {
	var fresh []string
	f := srv.File()
	for n, p := range f.Held {
		if !p.Notified && !p.Blocked {
			fresh = append(fresh, n)
		}
	}
	if len(fresh) == 0 {
		return nil, nil // nothing to write
	}
	fresh = fresh[:0]
	err := srv.edit(func(f *File) (bool, error) {
		for n, p := range f.Held {
			if !p.Notified && !p.Blocked {
				p.Notified = true
				fresh = append(fresh, n)
			}
		}
		return len(fresh) > 0, nil
	})
	slices.Sort(fresh)
	return fresh, err
}
