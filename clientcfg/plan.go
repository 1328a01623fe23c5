package clientcfg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/tailscale/hujson"
)

// Op is one change Keyport can make to a config file; build it with
// InstallOp, RemoveOp, SyncOp or RemoveKeyOp.
type Op struct {
	kind    string
	wants   []Want
	servers []string
	keys    []string
}

// InstallOp makes w's entry present and up to date (other entries are left
// alone).
func InstallOp(w Want) Op { return Op{kind: "install", wants: []Want{w}} }

// RemoveOp removes the Keyport entry of server.
func RemoveOp(server string) Op { return Op{kind: "remove", servers: []string{server}} }

// SyncOp makes every want's entry present and up to date and removes the
// Keyport entries of servers not in wants. Keys taken by foreign entries are
// skipped and reported in Change.Skipped.
func SyncOp(wants []Want) Op { return Op{kind: "sync", wants: wants} }

// RemoveKeyOp removes the entry named key whoever wrote it: for a removal
// the user asked for by name.
func RemoveKeyOp(key string) Op { return Op{kind: "remove-key", keys: []string{key}} }

// String names the operation for logs and backups.
func (o Op) String() string {
	var names []string
	for _, w := range o.wants {
		names = append(names, w.Server)
	}
	names = append(names, o.servers...)
	names = append(names, o.keys...)
	return o.kind + " " + strings.Join(names, ",")
}

func (o Op) check() error {
	switch o.kind {
	case "install", "sync":
		seen := map[string]bool{}
		for _, w := range o.wants {
			if err := w.check(); err != nil {
				return err
			}
			if seen[w.Server] {
				return fmt.Errorf("server %q is listed twice", w.Server)
			}
			seen[w.Server] = true
		}
		if o.kind == "install" && len(o.wants) != 1 {
			return errors.New("install needs exactly one server")
		}
	case "remove":
		for _, s := range o.servers {
			if err := checkServerName(s); err != nil {
				return err
			}
		}
	case "remove-key":
		for _, k := range o.keys {
			if k == "" {
				return errors.New("the key to remove is empty")
			}
		}
	default:
		return errors.New("empty operation: build it with InstallOp, RemoveOp, SyncOp or RemoveKeyOp")
	}
	return nil
}

// ErrForeign is matched (errors.Is) by a ForeignError.
var ErrForeign = errors.New("the entry was not written by Keyport")

// ForeignError: Keyport was asked to write or remove a "keyport-*" key that
// holds an entry Keyport did not write.
type ForeignError struct {
	Path string
	Key  string
	What string // what the entry is, without secret values
}

func (e *ForeignError) Error() string {
	return fmt.Sprintf("%s: %q is not a Keyport entry (%s); rename or remove it yourself, or use another server name", e.Path, e.Key, e.What)
}

// Is makes errors.Is(err, ErrForeign) work.
func (e *ForeignError) Is(target error) bool { return target == ErrForeign }

type setItem struct {
	key    string
	merged object
	plain  any
	occ    []int // existing occurrences
}

// planned is the outcome of planning an Op on a document.
type planned struct {
	out     []byte // the new file, BOM included; equal to the old when nothing changes
	skipped []EntryStatus
	secrets []string
	// verify checks out before it may be written (see verify); it is
	// separate so the Editor can run it while the temp file is fsynced.
	verify func() error
}

// planOp computes the new file text for op without touching the disk.
func planOp(d *doc, c Client, op Op, f JSONFormat) (planned, error) {
	p := planned{verify: func() error { return nil }}
	if err := op.check(); err != nil {
		return p, err
	}
	sec, err := d.section(c.RootKey)
	if err != nil {
		return p, err
	}
	idx := indexes(sec.obj)
	var sets []setItem
	dels := map[string]bool{}
	dups := map[string]bool{}
	wanted := map[string]bool{}

	for _, w := range op.wants {
		wanted[w.Key()] = true
		entry, err := c.entryFor(w)
		if err != nil {
			return p, err
		}
		p.secrets = appendSecrets(p.secrets, w.Headers, w.Env)
		occ := idx[w.Key()]
		merged := entry
		if len(occ) > 0 {
			eff := &sec.obj.Members[occ[len(occ)-1]].Value // clients read the last
			v, err := d.decode(eff)
			if err != nil {
				return p, err
			}
			if !isKeyportEntry(v) {
				if op.kind == "install" {
					return p, &ForeignError{Path: d.path, Key: w.Key(), What: describeForeign(v)}
				}
				p.skipped = append(p.skipped, EntryStatus{Server: w.Server, Key: w.Key(), State: StateForeign, Detail: describeForeign(v)})
				continue
			}
			p.secrets = appendPlainSecrets(p.secrets, v)
			merged = mergeExtras(d, entry, eff)
			if len(occ) == 1 && reflect.DeepEqual(toPlain(merged), v) {
				continue // already up to date
			}
			if len(occ) > 1 {
				dups[w.Key()] = true
			}
		}
		sets = append(sets, setItem{key: w.Key(), merged: merged, plain: toPlain(merged), occ: occ})
	}

	var delKeys []string
	switch op.kind {
	case "remove":
		for _, s := range op.servers {
			delKeys = append(delKeys, EntryKey(s))
		}
	case "remove-key":
		delKeys = append(delKeys, op.keys...)
	case "sync":
		names := make([]string, 0, len(idx))
		for k := range idx {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if !strings.HasPrefix(k, EntryPrefix) || wanted[k] {
				continue
			}
			occ := idx[k]
			v, err := d.decode(&sec.obj.Members[occ[len(occ)-1]].Value)
			if err != nil {
				return p, err
			}
			if !isKeyportEntry(v) {
				p.skipped = append(p.skipped, EntryStatus{Server: strings.TrimPrefix(k, EntryPrefix), Key: k, State: StateForeign, Detail: describeForeign(v)})
				continue
			}
			p.secrets = appendPlainSecrets(p.secrets, v)
			dels[k] = true
		}
	}
	for _, k := range delKeys {
		occ := idx[k]
		if len(occ) == 0 {
			continue
		}
		for _, i := range occ {
			v, err := d.decode(&sec.obj.Members[i].Value)
			if err != nil {
				return p, err
			}
			if op.kind == "remove" && !isKeyportEntry(v) {
				return p, &ForeignError{Path: d.path, Key: k, What: describeForeign(v)}
			}
			p.secrets = appendPlainSecrets(p.secrets, v)
		}
		dels[k] = true
	}

	raw := d.raw()
	if len(sets) == 0 && len(dels) == 0 {
		p.out = raw
		return p, nil
	}
	st := d.style(f)
	out, err := applySets(d, sec, c.RootKey, sets, st)
	if err != nil {
		return p, err
	}
	if len(dels) > 0 || len(dups) > 0 {
		if out, err = applyDeletes(d.path, out, c.RootKey, dels, dups); err != nil {
			return p, err
		}
	}
	want := make(map[string]any, len(sets))
	for _, s := range sets {
		want[s.key] = s.plain
	}
	noBOM := out
	p.verify = func() error { return verify(d, noBOM, c.RootKey, want, dels) }
	if d.bom {
		out = append(bytes.Clone(utf8BOM), out...)
	}
	p.out = out
	return p, nil
}

// raw returns the file's bytes as read.
func (d *doc) raw() []byte {
	if d.bom {
		return append(bytes.Clone(utf8BOM), d.src...)
	}
	return d.src
}

// mergeExtras appends the members of the existing entry that Keyport does
// not manage (e.g. "disabled", "timeout") to the wanted entry. Of a key
// given twice the last value is kept, as clients read it.
func mergeExtras(d *doc, entry object, existing *hujson.Value) object {
	obj, ok := existing.Value.(*hujson.Object)
	if !ok {
		return entry
	}
	merged := append(object{}, entry...)
	at := map[string]int{}
	for _, f := range entry {
		at[f.key] = -1
	}
	for i := range obj.Members {
		m := &obj.Members[i]
		name := memberName(m)
		if managedKeys[name] || at[name] < 0 {
			continue
		}
		b, err := hujson.Minimize(bytes.Clone(d.valueBytes(&m.Value)))
		if err != nil {
			continue
		}
		f := field{key: name, val: rawJSON(b), rawKey: string(d.src[m.Name.StartOffset:m.Name.EndOffset])}
		if j, ok := at[name]; ok {
			merged[j] = f
			continue
		}
		at[name] = len(merged)
		merged = append(merged, f)
	}
	return merged
}

func appendSecrets(s []string, maps ...map[string]string) []string {
	for _, m := range maps {
		for _, v := range m {
			s = append(s, v)
		}
	}
	return s
}

// appendPlainSecrets collects header and env values of a decoded entry.
func appendPlainSecrets(s []string, v any) []string {
	m, _ := v.(map[string]any)
	for _, k := range []string{"headers", "env"} {
		if hm, ok := m[k].(map[string]any); ok {
			for _, x := range hm {
				if xs, ok := x.(string); ok {
					s = append(s, xs)
				}
			}
		}
	}
	return s
}

func wantPretty(f JSONFormat, auto bool) bool {
	switch f {
	case FormatPretty:
		return true
	case FormatCompact:
		return false
	}
	return auto
}

// applySets replaces the existing entries of sets and appends the new ones.
func applySets(d *doc, sec section, rootKey string, sets []setItem, st style) ([]byte, error) {
	if len(sets) == 0 {
		return d.src, nil
	}
	servers := make(object, 0, len(sets))
	for _, s := range sets {
		if len(s.occ) == 0 {
			servers = append(servers, field{key: s.key, val: s.merged})
		}
	}
	switch {
	case d.blank:
		return freshDoc(rootKey, servers, st), nil
	case sec.idx < 0:
		lay := objLayout(d, &d.root, d.rootObj, true, st)
		ind := lay.indent
		if !lay.pretty {
			ind = ""
		}
		member := quote(rootKey) + st.colon + render(servers, ind, st, wantPretty(st.format, lay.pretty))
		return splice(d.src, insertMembers(d, &d.root, d.rootObj, lay, []string{member}, st))
	case sec.obj == nil: // "mcpServers": null
		rm := &d.rootObj.Members[sec.idx]
		_, pretty := lineStart(d.src, rm.Name.StartOffset)
		text := render(servers, lineIndent(d.src, rm.Name.StartOffset), st, wantPretty(st.format, pretty))
		return splice(d.src, []edit{{sec.val.StartOffset, sec.val.EndOffset, text}})
	}
	var edits []edit
	var members []string
	_, parentPretty := lineStart(d.src, d.rootObj.Members[sec.idx].Name.StartOffset)
	lay := objLayout(d, sec.val, sec.obj, parentPretty, st)
	for _, s := range sets {
		if len(s.occ) == 0 {
			ind := lay.indent
			if !lay.pretty {
				ind = lineIndent(d.src, sec.val.StartOffset)
			}
			members = append(members, quote(s.key)+st.colon+render(s.merged, ind, st, wantPretty(st.format, lay.pretty)))
			continue
		}
		m := &sec.obj.Members[s.occ[0]]
		multiline := bytes.IndexByte(d.valueBytes(&m.Value), '\n') >= 0
		text := render(s.merged, lineIndent(d.src, m.Name.StartOffset), st, wantPretty(st.format, multiline))
		edits = append(edits, edit{m.Value.StartOffset, m.Value.EndOffset, text})
	}
	if len(members) > 0 {
		edits = append(edits, insertMembers(d, sec.val, sec.obj, lay, members, st)...)
	}
	return splice(d.src, edits)
}

// freshDoc is the text of a new file holding only the servers.
func freshDoc(rootKey string, servers object, st style) []byte {
	if st.format == FormatCompact {
		return []byte("{" + quote(rootKey) + st.colon + render(servers, "", st, false) + "}" + st.nl)
	}
	return []byte("{" + st.nl + st.unit + quote(rootKey) + st.colon + render(servers, st.unit, st, true) + st.nl + "}" + st.nl)
}

// applyDeletes removes the members named in dels, and every occurrence but
// the first of the keys in dups, from the servers object of src.
func applyDeletes(path string, src []byte, rootKey string, dels, dups map[string]bool) ([]byte, error) {
	d, err := parseDoc(path, src)
	if err != nil {
		return nil, fmt.Errorf("internal error: re-parse after edit: %w", err)
	}
	sec, err := d.section(rootKey)
	if err != nil || sec.obj == nil {
		return src, err
	}
	idx := indexes(sec.obj)
	edits := deleteMembers(d, sec.val, sec.obj, func(i int) bool {
		name := memberName(&sec.obj.Members[i])
		return dels[name] || (dups[name] && idx[name][0] != i)
	})
	return splice(d.src, edits)
}

type member struct{ name, value []byte }

func members(d *doc, obj *hujson.Object, skip func(string) bool) []member {
	if obj == nil {
		return nil
	}
	var out []member
	for i := range obj.Members {
		m := &obj.Members[i]
		if skip(memberName(m)) {
			continue
		}
		out = append(out, member{d.src[m.Name.StartOffset:m.Name.EndOffset], d.valueBytes(&m.Value)})
	}
	return out
}

func sameMembers(a, b []member) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].name, b[i].name) || !bytes.Equal(a[i].value, b[i].value) {
			return false
		}
	}
	return true
}

// verify checks the planned text before anything is written: it parses,
// every member outside Keyport's touched keys is byte-for-byte what it was
// and in the same order, each set key appears once with the wanted value,
// each deleted key is gone, and a plain-JSON file stays plain JSON.
func verify(before *doc, out []byte, rootKey string, want map[string]any, dels map[string]bool) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("internal error: refusing to write %s: %s", before.path, fmt.Sprintf(format, args...))
	}
	after, err := parseDoc(before.path, out)
	if err != nil {
		return fail("the new text does not parse: %v", err)
	}
	if after.blank {
		return fail("the new text is empty")
	}
	if before.standard && !after.standard {
		return fail("the file was plain JSON and the new text is not")
	}
	if !before.blank {
		if !bytes.Equal(before.root.BeforeExtra, after.root.BeforeExtra) || !bytes.Equal(before.root.AfterExtra, after.root.AfterExtra) {
			return fail("text around the top-level object changed")
		}
	}
	notRoot := func(n string) bool { return n == rootKey }
	var bRoot []member
	if !before.blank {
		bRoot = members(before, before.rootObj, notRoot)
	}
	if !sameMembers(bRoot, members(after, after.rootObj, notRoot)) {
		return fail("a top-level member other than %q changed", rootKey)
	}
	bs, err := before.section(rootKey)
	if err != nil {
		return fail("%v", err)
	}
	as, err := after.section(rootKey)
	if err != nil {
		return fail("%v", err)
	}
	if as.obj == nil {
		return fail("%q is not an object", rootKey)
	}
	touched := func(n string) bool { _, ok := want[n]; return ok || dels[n] }
	if !sameMembers(members(before, bs.obj, touched), members(after, as.obj, touched)) {
		return fail("an entry Keyport does not own changed")
	}
	idx := indexes(as.obj)
	for k, w := range want {
		occ := idx[k]
		if len(occ) != 1 {
			return fail("%q appears %d times", k, len(occ))
		}
		v, err := after.decode(&as.obj.Members[occ[0]].Value)
		if err != nil || !reflect.DeepEqual(v, w) {
			return fail("%q does not hold the wanted entry", k)
		}
	}
	for k := range dels {
		if len(idx[k]) != 0 {
			return fail("%q is still there", k)
		}
	}
	return nil
}

// statusOf reports, for each want and for each other Keyport entry, the
// state of its entry in d.
func statusOf(d *doc, c Client, wants []Want) ([]EntryStatus, error) {
	sec, err := d.section(c.RootKey)
	if err != nil {
		return nil, err
	}
	idx := indexes(sec.obj)
	out := make([]EntryStatus, 0, len(wants))
	wanted := map[string]bool{}
	for _, w := range wants {
		wanted[w.Key()] = true
		entry, err := c.entryFor(w)
		if err != nil {
			return nil, err
		}
		st := EntryStatus{Server: w.Server, Key: w.Key()}
		occ := idx[w.Key()]
		if len(occ) == 0 {
			st.State = StateMissing
			st.Detail = fmt.Sprintf("no %q entry", w.Key())
			out = append(out, st)
			continue
		}
		v, err := d.decode(&sec.obj.Members[occ[len(occ)-1]].Value)
		if err != nil {
			return nil, err
		}
		if !isKeyportEntry(v) {
			st.State, st.Detail = StateForeign, describeForeign(v)
			out = append(out, st)
			continue
		}
		m, _ := v.(map[string]any)
		diffs := entryDiffs(c, m, entry)
		if len(occ) > 1 {
			diffs = append(diffs, fmt.Sprintf("the key appears %d times", len(occ)))
		}
		if len(diffs) == 0 {
			st.State = StateOK
		} else {
			st.State, st.Detail = StateStale, strings.Join(diffs, "; ")
		}
		out = append(out, st)
	}
	var rest []string
	for k := range idx {
		if strings.HasPrefix(k, EntryPrefix) && !wanted[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		occ := idx[k]
		v, err := d.decode(&sec.obj.Members[occ[len(occ)-1]].Value)
		if err != nil {
			return nil, err
		}
		st := EntryStatus{Server: strings.TrimPrefix(k, EntryPrefix), Key: k, State: StateOrphan, Detail: "Keyport no longer lists this server"}
		if !isKeyportEntry(v) {
			st.State, st.Detail = StateForeign, describeForeign(v)
		}
		out = append(out, st)
	}
	return out, nil
}

// Entry is one server entry of a config file, for import.
type Entry struct {
	Key string
	// Value is the entry as standard JSON (comments removed).
	Value json.RawMessage
	// Keyport reports whether Keyport wrote it.
	Keyport bool
}

func entriesOf(d *doc, c Client) ([]Entry, error) {
	sec, err := d.section(c.RootKey)
	if err != nil || sec.obj == nil {
		return nil, err
	}
	out := make([]Entry, 0, len(sec.obj.Members))
	for i := range sec.obj.Members {
		m := &sec.obj.Members[i]
		b, err := hujson.Minimize(bytes.Clone(d.valueBytes(&m.Value)))
		if err != nil {
			return nil, err
		}
		var v any
		_ = decodeJSON(b, &v)
		name := memberName(m)
		out = append(out, Entry{Key: name, Value: b, Keyport: strings.HasPrefix(name, EntryPrefix) && isKeyportEntry(v)})
	}
	return out, nil
}
