package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"keyport/app/catalog"
	"keyport/app/pinstore"
	"keyport/proxymgr"
	"keyport/proxymgr/audit"
	"keyport/proxymgr/pins"
	"keyport/proxymgr/policy"
)

// This file is tool pinning in the core: the pin store of the config dir
// (app/pinstore), which every proxy of this process is given, and what the
// GUI and the CLI call to review, approve, block and reset.

// Pin states of a Tool.
const (
	PinApproved = "approved"       // its definition is the approved one
	PinHeld     = "held"           // new or changed: hidden until reviewed
	PinBlocked  = "blocked"        // held, and the user chose to keep it blocked
	PinUnpinned = "not pinned yet" // the server's first list through Keyport will pin it
	PinDenied   = "denied by policy"
)

// ToolReview is a server's tool pinning for the review: its mode and the
// definitions held for review, with what changed.
type ToolReview struct {
	Server   string
	Mode     string // hold, warn or off
	Trusting bool   // nothing pinned yet: the next list is trusted
	// Problem says the pins could not be read and were set aside; every
	// tool is held until reviewed.
	Problem  string
	Approved int // tools with an approved definition
	Changes  []ToolChange
}

// Pending counts the changes still to review (not blocked, allowed by the
// policy).
func (r ToolReview) Pending() int {
	n := 0
	for _, c := range r.Changes {
		if !c.Blocked && !c.DeniedByPolicy {
			n++
		}
	}
	return n
}

// ToolChange is one tool held for review.
type ToolChange struct {
	Tool           string
	Kind           string // "new" or "changed"
	Blocked        bool   // the user chose Keep blocked
	DeniedByPolicy bool   // the tool policy denies it anyway
	OldHash        string // the approved definition's ("" for a new tool)
	NewHash        string
	Old, New       ToolText
	// DescriptionDiff and SchemaDiff are side by side (old → new).
	DescriptionDiff []DiffRow
	SchemaDiff      []DiffRow
	Flags           []string // suspicious text found ("instruction: ...")
	Seen            time.Time
}

// ToolText is a definition as a person reads it.
type ToolText struct {
	Description string
	Schema      string // title, input and output schema, annotations (JSON)
}

// DiffRow is one row of a side-by-side diff: Op is " " (same), "~"
// (changed), "-" (only old) or "+" (only new).
type DiffRow struct {
	Op       string
	Old, New string
}

// ToolDecision is what approving or blocking did to one tool.
type ToolDecision struct {
	Tool             string
	OldHash, NewHash string
}

// pinRuntime is the App's pin store, opened on first use.
type pinRuntime struct {
	once  sync.Once
	store *pinstore.Store
	stop  func()
}

// pinStore returns the pin store of the config dir.
func (a *App) pinStore() *pinstore.Store {
	a.pins.once.Do(func() { a.pins.store = pinstore.Open(a.dir, a.log) })
	return a.pins.store
}

// closePins stops watching the pins (Close).
func (a *App) closePins() {
	// A view asked for after Close still reads the files (Close only stops
	// the watcher), so the store must exist then too.
	a.pinStore()
	if a.pins.stop != nil {
		a.pins.stop()
	}
	if a.pins.store != nil {
		_ = a.pins.store.Close()
	}
}

// pinConfig gives a proxy configuration the server's pins and mode.
func (a *App) pinConfig(cfg *proxymgr.Config, s catalog.Server) {
	mode := s.PinningMode()
	if mode == catalog.PinOff {
		return
	}
	cfg.Pins = a.pinStore().Server(s.Name)
	cfg.Pinning = proxymgr.PinMode(mode)
}

// fillPins adds the pinning state to a view: the mode and how many tool
// changes wait for review.
func (a *App) fillPins(v *ServerView, s catalog.Server) {
	v.Pinning = string(s.PinningMode())
	f := a.pinStore().Server(s.Name).File()
	if f.Recovered != nil && !f.Recovered.Reviewed {
		v.PinsProblem = "the approved tool definitions could not be read and were set aside (" + f.Recovered.Moved + "); every tool is held until you review it"
	}
	if len(f.Held) == 0 {
		return
	}
	pol, err := policy.Compile(s.Tools.Allow, s.Tools.Deny)
	for n, h := range f.Held {
		if !h.Blocked && (err != nil || pol.Allowed(n)) {
			v.ToolChanges++
		}
	}
}

// ToolReview is a server's pinning state and the tools held for review,
// with side-by-side diffs of description and schema and the suspicious
// text found. It reads the pin file only (no network).
func (a *App) ToolReview(name string) (ToolReview, error) {
	s, err := a.server(name)
	if err != nil {
		return ToolReview{}, err
	}
	pol, err := policy.Compile(s.Tools.Allow, s.Tools.Deny)
	if err != nil {
		return ToolReview{}, err
	}
	srv := a.pinStore().Server(name)
	f := srv.File()
	r := ToolReview{Server: name, Mode: string(s.PinningMode()), Trusting: f.TrustedAt == nil, Approved: len(f.Tools)}
	if set := srv.Snapshot(); set.Problem != "" {
		r.Problem = set.Problem
	}
	names := make([]string, 0, len(f.Held))
	for n := range f.Held {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		h := f.Held[n]
		c := ToolChange{Tool: n, Kind: "new", Blocked: h.Blocked, DeniedByPolicy: !pol.Allowed(n), NewHash: string(h.Hash),
			New: toolText(h.Definition), Seen: h.SeenAt, Flags: flagTexts(currentFlags(h.Definition, h.Flags))}
		if old, ok := f.Tools[n]; ok {
			c.Kind, c.OldHash, c.Old = "changed", string(old.Hash), toolText(old.Definition)
		}
		c.DescriptionDiff = diffRows(c.Old.Description, c.New.Description)
		c.SchemaDiff = diffRows(c.Old.Schema, c.New.Schema)
		r.Changes = append(r.Changes, c)
	}
	return r, nil
}

// currentFlags are the flags of a definition as this Keyport finds them:
// the text is inspected again (so a file recorded by an older Keyport gets
// today's checks), with the recorded flags only this text cannot give
// (a shadowed name, unreadable pins).
func currentFlags(def []byte, recorded []pins.Flag) []pins.Flag {
	fs := pins.Inspect(def)
	for _, f := range recorded {
		if f.Kind == pins.FlagShadow || f.Kind == pins.FlagUnreadable {
			fs = append(fs, f)
		}
	}
	return fs
}

func toolText(def []byte) ToolText {
	t := pins.Present(def)
	return ToolText{Description: t.Description, Schema: t.Schema}
}

// Printable is text a server wrote (a tool's name or description) as it is
// shown to a person: every control, invisible or bidi-control character
// as an escape, so no control sequence of the server reaches a terminal
// and nothing the model reads is hidden from the review (pins.Printable).
func Printable(s string) string { return pins.Printable(s) }

func flagTexts(fs []pins.Flag) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.String())
	}
	return out
}

func diffRows(old, cur string) []DiffRow {
	var rows []DiffRow
	for _, r := range pins.SideBySide(pins.Diff(old, cur)) {
		rows = append(rows, DiffRow{Op: string(rune(r.Op)), Old: r.Old, New: r.New})
	}
	return rows
}

// UnifiedDiff writes rows as a unified diff ("-old", "+new", " same").
func UnifiedDiff(rows []DiffRow) string {
	var b strings.Builder
	var del, add []string
	flush := func() {
		for _, l := range del {
			b.WriteString("-" + l + "\n")
		}
		for _, l := range add {
			b.WriteString("+" + l + "\n")
		}
		del, add = nil, nil
	}
	for _, r := range rows {
		switch r.Op {
		case " ":
			flush()
			b.WriteString(" " + r.Old + "\n")
		case "-":
			del = append(del, r.Old)
		case "+":
			add = append(add, r.New)
		default:
			del, add = append(del, r.Old), append(add, r.New)
		}
	}
	flush()
	return b.String()
}

// ApproveTools approves the held definitions of tools of a server (all of
// them with all): the proxies of every Keyport process show them to
// clients from now on, and tell clients with an open stream.
func (a *App) ApproveTools(name string, tools []string, all bool) ([]ToolDecision, error) {
	if _, err := a.server(name); err != nil {
		return nil, err
	}
	if !all && len(tools) == 0 {
		return nil, errors.New("name the tools to approve, or approve all")
	}
	changes, err := a.pinStore().Server(name).Approve(tools, all)
	if err != nil {
		return nil, err
	}
	a.auditDecisions(name, audit.TypeToolApproved, "approved by the user", changes)
	return decisions(changes), nil
}

// BlockTools keeps the held definitions of tools (or all) blocked: hidden,
// and no longer counted as changes to review.
func (a *App) BlockTools(name string, tools []string, all bool) ([]ToolDecision, error) {
	if _, err := a.server(name); err != nil {
		return nil, err
	}
	if !all && len(tools) == 0 {
		return nil, errors.New("name the tools to keep blocked, or all")
	}
	changes, err := a.pinStore().Server(name).Block(tools, all)
	if err != nil {
		return nil, err
	}
	a.auditDecisions(name, audit.TypeToolBlocked, "kept blocked by the user", changes)
	return decisions(changes), nil
}

// ResetPins forgets every approved definition of a server: its next list
// is trusted again. It returns how many were forgotten.
func (a *App) ResetPins(name string) (int, error) {
	if _, err := a.server(name); err != nil {
		return 0, err
	}
	n, err := a.pinStore().Server(name).Reset()
	if err != nil {
		return 0, err
	}
	a.auditPins(name, []audit.Event{{Type: audit.TypeToolReset, Outcome: audit.OutcomeOK,
		Detail: fmt.Sprintf("forgot %d approved tool definitions; the next list is trusted as it is", n)}})
	return n, nil
}

func decisions(cs []pinstore.Change) []ToolDecision {
	out := make([]ToolDecision, 0, len(cs))
	for _, c := range cs {
		out = append(out, ToolDecision{Tool: c.Tool, OldHash: string(c.OldHash), NewHash: string(c.NewHash)})
	}
	return out
}

func (a *App) auditDecisions(name, typ, detail string, cs []pinstore.Change) {
	var evs []audit.Event
	for _, c := range cs {
		evs = append(evs, audit.Event{Type: typ, Tool: c.Tool, OldHash: string(c.OldHash), NewHash: string(c.NewHash), Outcome: audit.OutcomeOK, Detail: detail})
	}
	a.auditPins(name, evs)
}

// auditPins writes the user's pinning decisions to the server's audit log
// (shared with its proxies; the writer handles several processes).
func (a *App) auditPins(name string, evs []audit.Event) {
	if len(evs) == 0 {
		return
	}
	s, err := a.server(name)
	if err != nil {
		return
	}
	w, err := audit.Open(audit.Config{File: a.AuditPath(name), Params: auditParams(s.Audit.Params), Redactor: a.secrets.Redactor()}, audit.NewRedactor())
	if err != nil {
		a.log.Warn("cannot write the tool pinning decision to the audit log", "server", name, "err", err)
		return
	}
	now := time.Now()
	for _, e := range evs {
		e.Time, e.Server = now, name
		w.Log(e)
	}
	if err := w.Close(); err != nil {
		a.log.Warn("audit log", "server", name, "err", err)
	}
	a.publish(Event{Kind: EventAudit, Server: name})
}

// announceDelay is how long the tray waits after a server's pins changed
// before it announces the change set: the pages of one paginated list, or
// the answers to clients listing together, make one notification.
const announceDelay = 700 * time.Millisecond

// watchPins follows the pin files while the tray app runs: views are
// refreshed, and each new change set is announced once with a desktop
// notification naming the server (changes recorded while no tray app
// ran are announced at start).
func (a *App) watchPins() {
	events := make(chan string, 64)
	a.pins.stop = a.pinStore().Subscribe(func(server string) {
		select {
		case events <- server:
		default:
		}
	})
	ctx := a.runContext()
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		for _, s := range a.servers() {
			a.announcePins(s.Name)
		}
		due := map[string]time.Time{}
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case name := <-events:
				a.publish(Event{Kind: EventServers, Server: name})
				due[name] = time.Now().Add(announceDelay)
			case now := <-timer.C:
				for name, at := range due {
					if !now.Before(at) {
						delete(due, name)
						a.announcePins(name)
					}
				}
			}
			next := time.Hour
			for _, at := range due {
				next = min(next, time.Until(at))
			}
			timer.Reset(max(next, time.Millisecond))
		}
	}()
}

// announcePins notifies the user of a server's held tools not announced
// yet.
func (a *App) announcePins(name string) {
	s, err := a.server(name)
	if err != nil || s.PinningMode() == catalog.PinOff {
		return
	}
	store := a.pinStore().Server(name)
	if n, err := store.MarkTrustAnnounced(time.Now()); err != nil {
		a.log.Warn("tool pins", "server", name, "err", err)
	} else if n > 0 {
		then := "holds any that changes or is new until you review it"
		if s.PinningMode() == catalog.PinWarn {
			then = "tells you when one changes (pinning mode warn)"
		}
		a.publish(Event{Kind: EventNotice, Server: name, Title: pinnedTitle(name, n),
			Body: fmt.Sprintf("Keyport approved the tools %s listed first, as they are, and from now on %s. See them in %s → Tools or with keyport tools %s.",
				name, then, name, name)})
	}
	fresh, err := store.MarkNotified()
	if err != nil {
		a.log.Warn("tool pins", "server", name, "err", err)
		return
	}
	pol, _ := policy.Compile(s.Tools.Allow, s.Tools.Deny)
	fresh = slices.DeleteFunc(fresh, func(t string) bool { return pol != nil && !pol.Allowed(t) })
	if len(fresh) == 0 {
		return
	}
	what := "tool changes"
	if len(fresh) == 1 {
		what = "tool change"
	}
	shown := fresh
	if len(shown) > 5 {
		shown = append(slices.Clone(shown[:5]), fmt.Sprintf("and %d more", len(fresh)-5))
	}
	body := fmt.Sprintf("%s changed since you approved them or are new. ", strings.Join(shown, ", "))
	if s.PinningMode() == catalog.PinHold {
		body += "Keyport holds them until you review them: open " + name + " → Tools, or run keyport tools diff " + name + "."
	} else {
		body += "They pass (pinning mode warn); review them in " + name + " → Tools."
	}
	a.publish(Event{Kind: EventNotice, Server: name, ToolReview: true, Title: fmt.Sprintf("%s: %d %s to review", name, len(fresh), what), Body: body})
}

// capture keeps the bodies of tools/list answers an HTTP client receives,
// so the core judges a server's tools by the bytes the proxy would see.
type capture struct {
	base http.RoundTripper
	mu   sync.Mutex
	defs [][]byte
	open sync.WaitGroup // answers not read to their end yet
}

// wait waits (at most max) until every answer was read to its end or
// closed: the client may return a result before it closes the stream.
func (c *capture) wait(max time.Duration) [][]byte {
	done := make(chan struct{})
	go func() { c.open.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(max):
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.defs
}

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err != nil || r.Method != http.MethodPost || resp.StatusCode/100 != 2 {
		return resp, err
	}
	ct := resp.Header.Get("Content-Type")
	c.open.Add(1)
	resp.Body = &teeBody{ReadCloser: resp.Body, done: func(b []byte) {
		defer c.open.Done()
		defs := proxymgr.ListedTools(ct, b)
		c.mu.Lock()
		c.defs = append(c.defs, defs...)
		c.mu.Unlock()
	}}
	return resp, nil
}

// maxCaptured bounds what one answer's capture keeps.
const maxCaptured = 16 << 20

type teeBody struct {
	io.ReadCloser
	buf  bytes.Buffer
	done func([]byte)
	once sync.Once
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if t.buf.Len() < maxCaptured {
		t.buf.Write(p[:n])
	}
	if err != nil {
		t.once.Do(func() { t.done(t.buf.Bytes()) })
	}
	return n, err
}

func (t *teeBody) Close() error {
	t.once.Do(func() { t.done(t.buf.Bytes()) })
	return t.ReadCloser.Close()
}

// judgeTools marks listed tools with their pin state, from the raw
// definitions captured, and records new and changed ones for review, as
// the proxy would (nothing is trusted here: that is the first list a
// client gets through Keyport).
func (a *App) judgeTools(s catalog.Server, tools []Tool, raw [][]byte) []Tool {
	mode := s.PinningMode()
	if mode == catalog.PinOff {
		return tools
	}
	srv := a.pinStore().Server(s.Name)
	set := srv.Snapshot()
	byName := map[string]pins.Observed{}
	for _, r := range raw {
		if o, err := pins.Observe(r); err == nil {
			byName[o.Name] = o
		}
	}
	var obs []pins.Observed
	for _, t := range tools {
		if o, ok := byName[t.Name]; ok && t.Allowed {
			obs = append(obs, o)
		}
	}
	if !set.Trusting {
		_, _, rec := pins.Evaluate(set, obs, false, true)
		if !rec.Empty() {
			if _, err := srv.Record(rec); err != nil {
				a.log.Warn("could not record the tools held for review", "server", s.Name, "err", err)
			}
			set = srv.Snapshot()
		}
	}
	f := srv.File()
	for i := range tools {
		t := &tools[i]
		o, ok := byName[t.Name]
		switch {
		case !t.Allowed:
			t.Pin = PinDenied
		case !ok:
			t.Pin = PinHeld // its definition could not be read: the proxy holds it
		case set.Trusting:
			t.Pin = PinUnpinned
		case set.Check(t.Name, o.Hash) == pins.Approved:
			t.Pin = PinApproved
		case set.Held[t.Name].Blocked && set.Held[t.Name].Hash == o.Hash:
			t.Pin = PinBlocked
		default:
			t.Pin = PinHeld
		}
		if ok {
			t.Hash = string(o.Hash)
		}
		if p, ok := f.Held[t.Name]; ok && t.Pin != PinApproved {
			t.Flags = flagTexts(p.Flags)
		} else if p, ok := f.Tools[t.Name]; ok {
			t.Flags = flagTexts(p.Flags)
		}
	}
	return tools
}

// PinnedTools lists what Keyport recorded of a server's tools, without
// asking the server: every approved definition and every held one, with
// its state. `keyport tools NAME` shows it when the server cannot be
// reached.
func (a *App) PinnedTools(name string) ([]Tool, error) {
	s, err := a.server(name)
	if err != nil {
		return nil, err
	}
	pol, err := policy.Compile(s.Tools.Allow, s.Tools.Deny)
	if err != nil {
		return nil, err
	}
	f := a.pinStore().Server(name).File()
	var out []Tool
	add := func(n string, def []byte, h pins.Hash, state string, fs []pins.Flag) {
		t := Tool{Name: n, Description: pins.Present(def).Description, Allowed: pol.Allowed(n), Pin: state, Hash: string(h), Flags: flagTexts(fs)}
		if !t.Allowed {
			t.Pin = PinDenied
		}
		out = append(out, t)
	}
	for n, p := range f.Tools {
		if _, held := f.Held[n]; !held {
			add(n, p.Definition, p.Hash, PinApproved, p.Flags)
		}
	}
	for n, p := range f.Held {
		state := PinHeld
		if p.Blocked {
			state = PinBlocked
		}
		add(n, p.Definition, p.Hash, state, p.Flags)
	}
	slices.SortFunc(out, func(x, y Tool) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

// pinnedTitle is the title of the first-use trust's notification.
func pinnedTitle(server string, n int) string {
	if n == 1 {
		return server + ": pinned 1 tool"
	}
	return fmt.Sprintf("%s: pinned %d tools", server, n)
}
