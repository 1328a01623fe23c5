package proxymgr

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"keyport/proxymgr/audit"
	"keyport/proxymgr/pins"
)

// This file is the proxy's tool pinning stage (package pins has the pure
// rules). It runs next to the tool policy on tools/list answers (JSON and
// SSE, matched by request id) and on tools/call requests: a tool whose
// definition is not the one the user approved is hidden and its calls are
// refused locally, and clients are told (notifications/tools/list_changed
// on their open streams) when what they may see changes.

// PinMode says what a proxy does with tools whose definitions the user has
// not approved.
type PinMode string

// Pin modes.
const (
	// PinHold hides new and changed tools and refuses their calls until
	// the user approves them (the default).
	PinHold PinMode = "hold"
	// PinWarn passes them through but records, audits and reports them.
	PinWarn PinMode = "warn"
	// PinOff turns pinning off.
	PinOff PinMode = "off"
)

// Pins is what a proxy asks about its server's approved tool definitions.
// The core implements it over files in the config dir, shared by every
// process that runs a proxy of the server; the proxy knows nothing of how.
type Pins interface {
	// Snapshot is the server's current pins. It is called for every
	// tools/list answer and tools/call request, so it must be cheap.
	Snapshot() *pins.Set
	// Record stores what a tools/list answer showed: on first use the
	// definitions to trust, otherwise new or changed ones held for review
	// and held ones the server lists as approved again. It returns the
	// flags of the recorded tools by name (suspicious text, shadowing),
	// for the audit log. Snapshot reflects the change once it returns.
	Record(rec pins.Record) (flags map[string][]pins.Flag, err error)
	// Watch calls f (on any goroutine) whenever the snapshot may have
	// changed, including approvals made by another process, until stop.
	Watch(f func()) (stop func())
}

// pinState is a proxy's own pinning state: a cache of canonical hashes and
// the cursors of first lists in progress.
type pinState struct {
	mu      sync.Mutex
	seed    maphash.Seed
	cache   map[uint64]pinEntry  // by a hash of the raw definition (checked against raw)
	cursors map[string]time.Time // nextCursors of pages trusted on first use
	last    *pins.Set            // the snapshot clients were last told about
	stop    func()

	gateMu sync.Mutex
	gates  map[*streamGate]struct{} // open streams list_changed may be sent on
}

type pinEntry struct {
	raw []byte // the definition as listed: a hit must be these very bytes
	obs pins.Observed
	err error
}

const (
	maxPinCache      = 8192
	maxTrustCursors  = 256
	trustCursorTTL   = 10 * time.Minute
	heldReviewAdvice = "open Keyport, select %s and review it in the Tools tab, or run: keyport tools diff %s %s"
)

// pinning reports whether the proxy pins tool definitions.
func (p *Proxy) pinning() bool { return p.cfg.Pins != nil && p.cfg.Pinning != PinOff }

// observe canonicalizes a raw tool definition, from the cache when the
// same bytes were seen before (a tools/list answer is mostly the same
// definitions every time, and canonicalizing costs far more than a hash
// and a comparison of the bytes).
func (p *Proxy) observe(raw []byte) (pins.Observed, error) {
	ps := &p.pin
	ps.mu.Lock()
	if ps.cache == nil {
		ps.seed = maphash.MakeSeed()
	}
	key := maphash.Bytes(ps.seed, raw)
	e, ok := ps.cache[key]
	ps.mu.Unlock()
	if ok && bytes.Equal(e.raw, raw) {
		return e.obs, e.err
	}
	o, err := pins.Observe(raw)
	ps.mu.Lock()
	if ps.cache == nil || len(ps.cache) >= maxPinCache {
		ps.cache = make(map[uint64]pinEntry)
	}
	ps.cache[key] = pinEntry{bytes.Clone(raw), o, err}
	ps.mu.Unlock()
	return o, err
}

// pinRequest notes, for a tools/list the proxy forwards, the page it asks
// for: a page that continues a list trusted on first use is trusted too.
func (p *Proxy) pinRequest(pr *pendingReq, m *message) {
	if !p.pinning() || len(m.params) == 0 || m.params[0] != '{' {
		return
	}
	pr.cursor, _ = paramString(m.params, "cursor")
}

// continuesTrust reports (and forgets) whether cursor is the nextCursor of
// a page trusted on first use.
func (p *Proxy) continuesTrust(cursor string) bool {
	if cursor == "" {
		return false
	}
	ps := &p.pin
	ps.mu.Lock()
	defer ps.mu.Unlock()
	at, ok := ps.cursors[cursor]
	delete(ps.cursors, cursor)
	return ok && time.Since(at) < trustCursorTTL
}

func (p *Proxy) rememberTrust(cursor string) {
	if cursor == "" {
		return
	}
	ps := &p.pin
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.cursors == nil || len(ps.cursors) >= maxTrustCursors {
		ps.cursors = map[string]time.Time{}
	}
	ps.cursors[cursor] = time.Now()
}

// filterTools applies the tool policy and then pinning to a tools/list
// answer in one pass. It returns the message unchanged (same slice) when
// every tool stays.
func (p *Proxy) filterTools(msg []byte, pr *pendingReq) (out []byte, removed int, err error) {
	if !p.pinning() {
		return filterToolsResult(msg, p.pol)
	}
	a, err := splitToolsAnswer(msg)
	if err != nil || a == nil {
		return msg, 0, err
	}
	set := p.cfg.Pins.Snapshot()
	trust := set.Trusting || p.continuesTrust(pr.cursor)
	hold := p.cfg.Pinning != PinWarn
	type at struct{ l, j int }
	var (
		obs   []pins.Observed
		where []at
	)
	for li, l := range a.lists {
		for j, t := range l.tools {
			name, ok := paramString(t, "name")
			if !ok || !p.pol.Allowed(name) {
				l.keep[j] = false // the policy's: nameless tools cannot be checked
				continue
			}
			o, oerr := p.observe(t)
			if oerr != nil {
				// Clients could read it differently than Keyport does.
				p.log.Warn("a tool definition cannot be pinned; it is held", "tool", name, "err", oerr)
				l.keep[j] = !hold
				continue
			}
			obs = append(obs, o)
			where = append(where, at{li, j})
		}
	}
	visible, verdicts, rec := pins.Evaluate(set, obs, trust, hold)
	for i, w := range where {
		a.lists[w.l].keep[w.j] = visible[i]
	}
	if !rec.Empty() {
		flags, rerr := p.cfg.Pins.Record(rec)
		if rerr != nil {
			p.log.Error("could not record the tools' definitions", "err", rerr)
			if len(rec.Trust) > 0 {
				// Trusting a list that is not recorded would let it change
				// unseen: fail closed.
				return nil, 0, fmt.Errorf("Keyport could not record the approved tool definitions (%v)", rerr)
			}
		} else {
			p.auditPins(set, rec, obs, verdicts, flags, pr, hold)
		}
	}
	if trust {
		if next, ok := lookup(a.rms, "nextCursor"); ok {
			c, _ := unquote(next)
			p.rememberTrust(c)
		}
	}
	out, removed = a.join(msg)
	return out, removed, nil
}

// auditPins logs what one tools/list answer changed in the pins.
func (p *Proxy) auditPins(set *pins.Set, rec pins.Record, obs []pins.Observed, verdicts []pins.Verdict, flags map[string][]pins.Flag, pr *pendingReq, hold bool) {
	if len(rec.Trust) > 0 {
		p.log.Info("pinned the server's tools on first use", "tools", len(rec.Trust))
	}
	for _, o := range rec.Hold {
		p.log.Warn("a tool's definition is not the approved one", "tool", o.Name, "held", hold)
	}
	if p.audit == nil {
		return
	}
	now := time.Now()
	base := audit.Event{Time: now, Server: p.name, Session: pr.session, ClientName: pr.client.name, ClientVersion: pr.client.version, Method: "tools/list"}
	if len(rec.Trust) > 0 {
		e := base
		e.Type, e.Outcome = audit.TypeToolTrusted, audit.OutcomeOK
		e.Detail = fmt.Sprintf("pinned %d tools as first listed (trust on first use)", len(rec.Trust))
		p.audit.Log(e)
		for _, o := range rec.Trust {
			if fs := flags[o.Name]; len(fs) > 0 {
				e := base
				e.Type, e.Outcome, e.Tool, e.NewHash, e.Flags = audit.TypeToolTrusted, audit.OutcomeOK, o.Name, string(o.Hash), flagStrings(fs)
				e.Detail = "pinned on first use, with suspicious text"
				p.audit.Log(e)
			}
		}
	}
	verdict := map[string]pins.Verdict{}
	for i, o := range obs {
		verdict[o.Name] = verdicts[i]
	}
	for _, o := range rec.Hold {
		e := base
		e.Tool, e.NewHash, e.OldHash, e.Flags = o.Name, string(o.Hash), string(set.Approved[o.Name]), flagStrings(flags[o.Name])
		e.Type, e.Outcome = audit.TypeToolHeld, audit.OutcomeHeld
		if !hold {
			e.Type, e.Outcome = audit.TypeToolChanged, audit.OutcomeOK
		}
		if verdict[o.Name] == pins.New {
			e.Detail = "a new tool, not approved yet"
		} else {
			e.Detail = "its definition changed since it was approved"
		}
		p.audit.Log(e)
	}
}

func flagStrings(fs []pins.Flag) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.String())
	}
	return out
}

// heldCall says why a tools/call of tool must be refused because its
// definition is held for review, or "" when it may go on.
func (p *Proxy) heldCall(tool string) (why string, old, cur pins.Hash) {
	if !p.pinning() || p.cfg.Pinning == PinWarn {
		return "", "", ""
	}
	set := p.cfg.Pins.Snapshot()
	if set == nil || set.Trusting {
		return "", "", ""
	}
	approved, isApproved := set.Approved[tool]
	hd, held := set.Held[tool]
	advice := fmt.Sprintf(heldReviewAdvice, p.name, p.name, tool)
	switch {
	case held && hd.Blocked:
		return fmt.Sprintf("tool %q of server %s is blocked: you kept its current definition blocked in Keyport; to review it again, %s", tool, p.name, advice), approved, hd.Hash
	case held && isApproved && hd.Hash != approved:
		return fmt.Sprintf("tool %q of server %s changed since you approved it, so Keyport holds it until you review the change; %s", tool, p.name, advice), approved, hd.Hash
	case held && !isApproved:
		return fmt.Sprintf("tool %q is new on server %s and Keyport holds it until you approve it; %s", tool, p.name, advice), "", hd.Hash
	case !isApproved && set.Problem != "":
		return fmt.Sprintf("tool %q of server %s is held: Keyport could not read the approved tool definitions (%s), so every tool waits for your review; %s", tool, p.name, set.Problem, advice), "", ""
	case !isApproved:
		// Never listed: a tool the server hides from tools/list (or one a
		// description talks the model into calling) has no definition the
		// user could have approved.
		return fmt.Sprintf("tool %q was never listed by server %s, so you never approved it; Keyport passes calls only of tools you approved (list the server's tools, then %s)", tool, p.name, advice), "", ""
	}
	return "", "", ""
}

// refuseHeld answers a tools/call of a held tool (it never reaches the
// upstream) and audits it.
func (p *Proxy) refuseHeld(m *message, tool, why string, old, cur pins.Hash, sess *session, ci clientInfo, now time.Time) []byte {
	p.denials.Add(1)
	if p.audit != nil {
		e := audit.Event{Time: now, Type: audit.TypeDenial, Server: p.name, Method: m.method, ID: m.id, Tool: tool,
			ClientName: ci.name, ClientVersion: ci.version, ParamsSize: len(m.params), Outcome: audit.OutcomeHeld, Error: why,
			OldHash: string(old), NewHash: string(cur)}
		if sess != nil {
			e.Session = sess.id
		}
		e.Params = p.auditParams(m.params)
		p.audit.Log(e)
	}
	p.log.Info("refused a call of a held tool", "tool", tool)
	return rpcError(m.id, codeInvalidParams, why)
}

// startPins follows the server's pins while the proxy runs.
func (p *Proxy) startPins() {
	if !p.pinning() {
		return
	}
	p.pin.mu.Lock()
	p.pin.last = p.cfg.Pins.Snapshot()
	p.pin.mu.Unlock()
	// Told on the goroutine of whoever changed the pins (maybe this proxy,
	// answering a list): the streams are written on another.
	stop := p.cfg.Pins.Watch(func() { go p.pinsChanged() })
	p.pin.mu.Lock()
	p.pin.stop = stop
	p.pin.mu.Unlock()
}

func (p *Proxy) stopPins() {
	p.pin.mu.Lock()
	stop := p.pin.stop
	p.pin.stop = nil
	p.pin.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// pinsChanged tells the clients with an open stream to list the tools
// again when what they may see changed (a tool approved, or an approved
// one held).
func (p *Proxy) pinsChanged() {
	next := p.cfg.Pins.Snapshot()
	p.pin.mu.Lock()
	prev := p.pin.last
	p.pin.last = next
	p.pin.mu.Unlock()
	if p.cfg.Pinning == PinWarn || !pins.VisibleChanged(prev, next) {
		return
	}
	p.pin.gateMu.Lock()
	gates := make([]*streamGate, 0, len(p.pin.gates))
	for g := range p.pin.gates {
		gates = append(gates, g)
	}
	p.pin.gateMu.Unlock()
	p.log.Info("the tools clients may see changed; telling open sessions", "streams", len(gates))
	for _, g := range gates {
		g.inject()
	}
}

// toolsChangedNote is the notification sent on a session's GET stream.
const toolsChangedNote = `{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`

// getGate registers a 2025-era session's GET stream for list_changed.
func (p *Proxy) getGate(sess *session) *streamGate {
	if !p.pinning() || sess == nil {
		return nil
	}
	return p.openGate([]byte(toolsChangedNote))
}

// listenGate registers a 2026-era subscriptions/listen stream that asked
// for tools list changes (notifications.toolsListChanged). Its
// notifications carry the listen request's id in _meta, as the server's
// own do.
func (p *Proxy) listenGate(msgs []message) *streamGate {
	if !p.pinning() {
		return nil
	}
	for i := range msgs {
		m := &msgs[i]
		if !m.isRequest() || m.method != "subscriptions/listen" || len(m.params) == 0 || m.params[0] != '{' {
			continue
		}
		ms, err := scanObject(m.params)
		if err != nil {
			continue
		}
		subs, ok := lookup(ms, "notifications")
		if !ok || len(subs) == 0 || subs[0] != '{' {
			continue
		}
		sms, err := scanObject(subs)
		if err != nil {
			continue
		}
		if v, ok := lookup(sms, "toolsListChanged"); !ok || string(v) != "true" {
			continue
		}
		note := `{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":` + string(m.id) + `}}}`
		return p.openGate([]byte(note))
	}
	return nil
}

func (p *Proxy) openGate(note []byte) *streamGate {
	g := &streamGate{p: p, event: []byte("event: message\ndata: " + string(note) + "\n\n")}
	p.pin.gateMu.Lock()
	if p.pin.gates == nil {
		p.pin.gates = map[*streamGate]struct{}{}
	}
	p.pin.gates[g] = struct{}{}
	p.pin.gateMu.Unlock()
	return g
}

// closeGate unregisters g (nil: nothing).
func (p *Proxy) closeGate(g *streamGate) {
	if g == nil {
		return
	}
	g.close()
	p.pin.gateMu.Lock()
	delete(p.pin.gates, g)
	p.pin.gateMu.Unlock()
}

// checksText names what the proxy checks in tools/list answers, for the
// error of an answer too large to check.
func (p *Proxy) checksText() string {
	if p.pinning() {
		return "the tool policy and tool pinning"
	}
	return "the tool policy"
}

// ListedTools returns the raw tool definitions in the tools/list results
// of an MCP response body: a JSON message (or batch), or an event stream
// whose events carry them. The core uses it to judge a server's tools
// with the very bytes the proxy would see.
func ListedTools(contentType string, body []byte) [][]byte {
	var out [][]byte
	msg := func(data []byte) {
		elems := [][]byte{data}
		if isBatch(data) {
			var err error
			if elems, err = scanArray(data); err != nil {
				return
			}
		}
		for _, e := range elems {
			a, err := splitToolsAnswer(e)
			if err != nil || a == nil {
				continue
			}
			for _, l := range a.lists {
				for _, t := range l.tools {
					out = append(out, bytes.Clone(t))
				}
			}
		}
	}
	if !strings.HasPrefix(contentType, "text/event-stream") {
		msg(body)
		return out
	}
	sc := newSSEScanner(len(body))
	sc.feed(body, func(int) {}, func(_ int, ev *sseEvent) {
		if ev.hasData && !ev.overflow {
			msg(ev.data)
		}
	})
	return out
}
