package ui

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"keyport/app"
	"keyport/ui/fakecore"
)

func simpleCore() *fakecore.Core {
	return fakecore.New(
		app.ServerView{Name: "alpha", Description: "First", UpstreamURL: "https://alpha.example/mcp", Labels: map[string]string{"env": "prod"}},
		app.ServerView{Name: "beta", Description: "Second", UpstreamURL: "https://beta.example/mcp", Labels: map[string]string{"env": "dev"}},
		app.ServerView{Name: "gamma", Description: "Third", UpstreamURL: "https://gamma.example/mcp"},
	)
}

func TestWindowListsServersAndSelectsTheFirst(t *testing.T) {
	h := newHarness(t, simpleCore())
	if got := h.u.Window.Title(); got != "Keyport" {
		t.Errorf("title = %q, want Keyport", got)
	}
	if got := h.shownNames(); !slices.Equal(got, []string{"alpha", "beta", "gamma"}) {
		t.Fatalf("rows = %v", got)
	}
	if h.u.emptyBox.Visible() {
		t.Error("the empty hint shows over a full list")
	}
	if h.u.selected != "alpha" || h.u.Detail.Title.Text != "alpha" {
		t.Errorf("selected %q, detail shows %q; want alpha", h.u.selected, h.u.Detail.Title.Text)
	}
	r := h.row("beta")
	if r.desc.Text() != "Second" || len(r.chips.Objects) != 1 || r.chips.Objects[0].(*chip).text != "env=dev" {
		t.Errorf("beta row shows desc %q, chips %d", r.desc.Text(), len(r.chips.Objects))
	}
	if !r.sw.Visible() || r.sw.On {
		t.Error("a stopped server's switch must be visible and off")
	}
}

func TestEmptyCatalogSaysWhatToDo(t *testing.T) {
	h := newHarness(t, fakecore.New())
	if !h.u.emptyBox.Visible() || !strings.Contains(h.u.Empty.Text, "Add server") {
		t.Errorf("empty state = %q (visible %t), want a hint naming Add server", h.u.Empty.Text, h.u.emptyBox.Visible())
	}
	if h.u.Detail.body.Visible() {
		t.Error("the detail pane shows with nothing selected")
	}
}

func TestToggleShowsStartingThenRunning(t *testing.T) {
	core := simpleCore()
	gate := make(chan struct{})
	core.SetGate(gate)
	h := newHarness(t, core)
	test.Tap(h.row("beta").sw)
	h.settle()
	r := h.row("beta")
	if r.dot.state != app.ProxyStarting || !r.sw.On || !r.sw.Disabled() {
		t.Fatalf("while starting: dot %s, switch on=%t disabled=%t; want starting, on, disabled", r.dot.state, r.sw.On, r.sw.Disabled())
	}
	gate <- struct{}{}
	h.waitFor("beta running", func() bool { return h.row("beta").dot.state == app.ProxyRunning })
	r = h.row("beta")
	if !slices.Contains(core.Calls(), "SetProxyEnabled beta true") {
		t.Errorf("calls = %q, want SetProxyEnabled beta true", core.Calls())
	}
	if r.sw.Disabled() || !r.sw.On || r.url.Text != "http://127.0.0.1:41004/mcp" || !r.copy.Visible() {
		t.Errorf("running row: switch disabled=%t on=%t url=%q copy=%t", r.sw.Disabled(), r.sw.On, r.url.Text, r.copy.Visible())
	}
	test.Tap(r.copy)
	if got := h.app.Clipboard().Content(); got != "http://127.0.0.1:41004/mcp" {
		t.Errorf("clipboard = %q after copy", got)
	}

	// Off stops it.
	core.SetGate(nil)
	test.Tap(h.row("beta").sw)
	h.waitFor("beta stopped", func() bool { return h.row("beta").dot.state == app.ProxyStopped && !h.row("beta").sw.Disabled() })
	if !slices.Contains(core.Calls(), "SetProxyEnabled beta false") {
		t.Errorf("calls = %q, want SetProxyEnabled beta false", core.Calls())
	}
}

func TestToggleErrorShownInlineAndNotified(t *testing.T) {
	core := simpleCore()
	core.FailProxy("gamma", "port 41005 is taken by another program: quit it or pick another port")
	h := newHarness(t, core)
	test.Tap(h.row("gamma").sw)
	h.waitFor("gamma error", func() bool { return h.row("gamma").prob.Visible() })
	r := h.row("gamma")
	if !strings.Contains(r.prob.Text, "Could not start the proxy: port 41005 is taken") || r.prob.Importance != widget.DangerImportance {
		t.Errorf("inline error = %q (importance %v)", r.prob.Text, r.prob.Importance)
	}
	if r.dot.state != app.ProxyError {
		t.Errorf("dot = %s, want error", r.dot.state)
	}
	if !strings.Contains(r.dot.tip.text, "port 41005 is taken") {
		t.Errorf("hover text = %q, want the reason", r.dot.tip.text)
	}
	// The next try clears the error first.
	core.FailProxy("gamma", "")
	gate := make(chan struct{})
	core.SetGate(gate)
	test.Tap(r.sw) // the switch shows on (error state keeps Enabled): this turns it off
	h.settle()
	if h.row("gamma").prob.Visible() {
		t.Error("the old error still shows while a new toggle runs")
	}
	gate <- struct{}{}
	h.waitFor("gamma settled", func() bool { return !h.row("gamma").sw.Disabled() })
}

func TestSearchAndLabelFilter(t *testing.T) {
	h := newHarness(t, simpleCore())
	test.Type(h.u.Search, "BET")
	h.settle()
	if got := h.shownNames(); !slices.Equal(got, []string{"beta"}) {
		t.Errorf("search BET shows %v, want [beta]", got)
	}
	h.u.Search.SetText("")
	if !slices.Equal(h.u.LabelFilter.Options, []string{allLabels, "env=dev", "env=prod"}) {
		t.Errorf("label options = %q", h.u.LabelFilter.Options)
	}
	h.u.LabelFilter.SetSelected("env=prod")
	if got := h.shownNames(); !slices.Equal(got, []string{"alpha"}) {
		t.Errorf("label env=prod shows %v, want [alpha]", got)
	}
	h.u.Search.SetText("nope")
	if !h.u.emptyBox.Visible() || !strings.Contains(h.u.Empty.Text, `"nope in env=prod"`) {
		t.Errorf("no-match hint = %q (visible %t)", h.u.Empty.Text, h.u.emptyBox.Visible())
	}
	h.u.Search.SetText("")
	h.u.LabelFilter.SetSelected(allLabels)
	if got := h.shownNames(); len(got) != 3 {
		t.Errorf("cleared filters show %v", got)
	}
}

func TestKeyboard(t *testing.T) {
	h := newHarness(t, simpleCore())
	c := h.u.Window.Canvas()
	c.Focus(h.u.List)
	// Ctrl/Cmd+F focuses the search box.
	sc := &desktop.CustomShortcut{KeyName: fyne.KeyF, Modifier: fyne.KeyModifierShortcutDefault}
	c.(fyne.Shortcutable).TypedShortcut(sc)
	if c.Focused() != h.u.Search {
		t.Errorf("after Ctrl+F the focus is on %T, want the search box", c.Focused())
	}
	// Enter in the list toggles the selected server.
	h.selectServer("beta")
	c.Focus(h.u.List)
	h.u.List.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	h.waitFor("beta running", func() bool { return h.row("beta").dot.state == app.ProxyRunning })
	if !slices.Contains(h.core.Calls(), "SetProxyEnabled beta true") {
		t.Errorf("Enter made calls %q", h.core.Calls())
	}
}

func TestCatalogErrorBanner(t *testing.T) {
	core := simpleCore()
	core.SetCatalogError("servers.yaml line 4: url must be https://: fix the URL")
	h := newHarness(t, core)
	if !h.u.Banner.box.Visible() || !strings.Contains(h.u.Banner.text.Text, "servers.yaml line 4") {
		t.Fatalf("banner visible=%t text=%q", h.u.Banner.box.Visible(), h.u.Banner.text.Text)
	}
	core.SetCatalogError("")
	h.waitFor("banner hidden", func() bool { return !h.u.Banner.box.Visible() })
}

func TestCloseQuitsTheWindowOnly(t *testing.T) {
	core := simpleCore()
	h := newHarness(t, core)
	h.u.Quit() // what closing the window does (its close intercept)
	h.waitFor("core closed", func() bool { return core.Closed() == 1 })
	h.u.Quit() // a second quit is harmless
	h.settle()
	if core.Closed() != 1 {
		t.Errorf("Close called %d times", core.Closed())
	}
}

// quitCore is a core in another process: QuitKeyport asks it to quit
// Keyport, before the window closes its connection.
type quitCore struct {
	*fakecore.Core
	mu    sync.Mutex
	calls []string
}

func (q *quitCore) Quit() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls = append(q.calls, "Quit")
	return nil
}

func (q *quitCore) Close() error {
	q.mu.Lock()
	q.calls = append(q.calls, "Close")
	q.mu.Unlock()
	return q.Core.Close()
}

func (q *quitCore) seen() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.calls)
}

func TestQuitKeyportAsksTheTrayFirst(t *testing.T) {
	core := &quitCore{Core: simpleCore()}
	fa := test.NewTempApp(t)
	q := make(chan func(), 4096)
	u := newUI(fa, core, options{do: func(f func()) { q <- f }})
	h := &harness{t: t, app: fa, u: u, core: core.Core, q: q}
	t.Cleanup(func() { u.Close(); h.settle() })
	u.QuitKeyport()
	h.waitFor("closed", func() bool { return len(core.seen()) == 2 })
	if got := core.seen(); !slices.Equal(got, []string{"Quit", "Close"}) {
		t.Errorf("calls = %q, want Quit then Close", got)
	}
}

func TestCredentialSetAndClear(t *testing.T) {
	core := fakecore.Sample()
	h := newHarness(t, core)
	h.selectServer("warehouse")
	ov := h.u.Detail.overview
	if !strings.Contains(ov.Credential.Text, "Missing from the keychain: bearer") || !ov.SetCred.Visible() {
		t.Fatalf("credential = %q, set button %t", ov.Credential.Text, ov.SetCred.Visible())
	}
	test.Tap(ov.SetCred)
	d := h.u.SecretDialog
	if d == nil || d.Entries["bearer"] == nil || !d.Entries["bearer"].Password {
		t.Fatal("the secret dialog must ask for the bearer token in a masked entry")
	}
	test.Tap(d.Submit)
	if !d.Err.Visible() {
		t.Error("saving an empty secret must say what to do")
	}
	test.Type(d.Entries["bearer"], "s3cret-token")
	test.Tap(d.Submit)
	h.waitFor("credential set", func() bool { return strings.Contains(ov.Credential.Text, "Stored in your OS keychain") })
	if !slices.Contains(core.Calls(), "SetSecret warehouse bearer (12 bytes)") {
		t.Errorf("calls = %q", core.Calls())
	}
	for _, c := range core.Calls() {
		if strings.Contains(c, "s3cret") {
			t.Error("the secret leaked into a call record")
		}
	}
	if ov.SetCred.Text != "Replace…" || !ov.ClearCred.Visible() {
		t.Errorf("after set: button %q, clear visible %t", ov.SetCred.Text, ov.ClearCred.Visible())
	}
}

func TestToolPolicyEditor(t *testing.T) {
	core := fakecore.Sample()
	h := newHarness(t, core)
	h.selectServer("github")
	h.selectTab("Tools")
	tools := h.u.Detail.tools
	h.waitFor("tools loaded", func() bool { return len(tools.tools) == 7 })
	if !slices.Contains(core.Calls(), "Tools github") {
		t.Errorf("calls = %q", core.Calls())
	}
	h.waitFor("preview", func() bool { return strings.HasPrefix(tools.Preview.Text, "Allowed: 4 of 7") })
	if tools.allowed["create_issue"] || !tools.allowed["search_code"] {
		t.Errorf("allowed = %v", tools.allowed)
	}
	// Deny a tool through its checkbox: the pattern fields follow.
	tools.setTool("search_code", false)
	h.waitFor("preview after deny", func() bool { return strings.HasPrefix(tools.Preview.Text, "Allowed: 3 of 7") })
	if tools.Deny.Text != "delete_*, search_code" || tools.Save.Disabled() {
		t.Errorf("deny = %q, save disabled %t", tools.Deny.Text, tools.Save.Disabled())
	}
	// A bad pattern is shown and blocks Save.
	tools.Allow.SetText("^(unclosed$")
	h.waitFor("pattern error", func() bool { return strings.HasPrefix(tools.Preview.Text, "Pattern error") })
	if !tools.Save.Disabled() {
		t.Error("Save stays enabled with an invalid pattern")
	}
	tools.Allow.SetText("search_*, get_*")
	h.waitFor("preview", func() bool { return strings.HasPrefix(tools.Preview.Text, "Allowed: 2 of 7") })
	test.Tap(tools.Save)
	h.waitFor("saved", func() bool { return strings.HasPrefix(tools.Status.Text, "Policy saved") })
	if !slices.Contains(core.Calls(), "SetToolPolicy github allow=[search_* get_*] deny=[delete_* search_code]") {
		t.Errorf("calls = %q", core.Calls())
	}
	if !tools.Save.Disabled() {
		t.Error("Save stays enabled after saving")
	}
}

func TestAuditLiveTailFilterAndExport(t *testing.T) {
	core := fakecore.Sample()
	h := newHarness(t, core)
	h.selectServer("github")
	h.selectTab("Audit")
	a := h.u.Detail.audit
	h.waitFor("entries", func() bool { return len(a.shown) == 7 })
	if a.shown[0].Tool != "list_pull_requests" {
		t.Errorf("newest first: got %q first", a.shown[0].Tool)
	}
	core.AppendAudit("github", app.AuditEntry{Method: "tools/call", Tool: "get_me", Outcome: "ok", Raw: `{"tool":"get_me"}`})
	h.waitFor("live entry", func() bool { return len(a.shown) == 8 && a.shown[0].Tool == "get_me" })
	a.Filter.SetText("denied")
	if len(a.shown) != 1 || a.shown[0].Tool != "delete_branch" {
		t.Errorf("filter denied shows %d entries", len(a.shown))
	}
	// Export of the filtered view writes the matching JSON lines.
	var sb strings.Builder
	w := nopWriteCloser{&sb}
	if err := writeAudit(w, "/nonexistent", true, []string{a.shown[0].Raw}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), `"tool":"delete_branch"`) {
		t.Errorf("export wrote %q", sb.String())
	}
	if err := writeAudit(nopWriteCloser{&sb}, "/nonexistent/audit.jsonl", false, nil); err == nil || !strings.Contains(err.Error(), "no audit log yet") {
		t.Errorf("export of a missing log: %v", err)
	}
}

type nopWriteCloser struct{ *strings.Builder }

func (nopWriteCloser) Close() error { return nil }

func TestClientsAddPreviewWriteUndo(t *testing.T) {
	core := fakecore.Sample()
	h := newHarness(t, core)
	h.selectServer("github")
	h.selectTab("Clients")
	ct := h.u.Detail.clients
	cursor := ct.rows["cursor"]
	if cursor.Action.Text != "Repair" || cursor.State.text != "stale" || !strings.Contains(cursor.Note.Text, "port 40999") {
		t.Errorf("cursor row: %q %q %q", cursor.Action.Text, cursor.State.text, cursor.Note.Text)
	}
	cc := ct.rows["claude-code"]
	if cc.Action.Text != "Add" {
		t.Fatalf("claude-code action = %q, want Add", cc.Action.Text)
	}
	test.Tap(cc.Action)
	h.waitFor("preview", func() bool { return ct.Preview != nil })
	if !strings.Contains(ct.Preview.Diff.String(), `+    "github"`) {
		t.Errorf("preview diff = %q", ct.Preview.Diff.String())
	}
	if slices.Contains(core.Calls(), "ApplyClient claude-code github true") {
		t.Fatal("the change was written before the preview was confirmed")
	}
	ct.Preview.Confirm()
	h.waitFor("written", func() bool { return ct.rows["claude-code"].State.text == "connected" })
	cc = ct.rows["claude-code"]
	if cc.Action.Text != "Remove" || !cc.Undo.Visible() || !strings.Contains(cc.Note.Text, "Wrote ~/.claude.json") {
		t.Errorf("after write: action %q, undo %t, note %q", cc.Action.Text, cc.Undo.Visible(), cc.Note.Text)
	}
	test.Tap(cc.Undo)
	h.waitFor("undone", func() bool { return ct.rows["claude-code"].State.text == "not added" })
	if !slices.Contains(core.Calls(), "UndoClient claude-code") {
		t.Errorf("calls = %q", core.Calls())
	}
	// A restart note after writing Claude Desktop's file.
	test.Tap(ct.rows["claude"].Action) // Remove
	h.waitFor("preview", func() bool { return ct.Preview != nil })
	ct.Preview.Confirm()
	h.waitFor("removed", func() bool { return ct.rows["claude"].State.text == "not added" })
	if !strings.Contains(ct.rows["claude"].Note.Text, "Restart Claude Desktop") {
		t.Errorf("claude note = %q, want the restart note", ct.rows["claude"].Note.Text)
	}
	// A change on disk (EventClients) updates the row live.
	core.SetClient("github", app.ClientView{ID: "cursor", Name: "Cursor", Path: "~/.cursor/mcp.json", Detected: true, State: app.ClientOK})
	h.waitFor("cursor ok", func() bool { return ct.rows["cursor"].State.text == "connected" })
	// A failed write is reported.
	core.FailClients(errors.New("~/.cursor/mcp.json is not valid JSON (line 3): fix it or remove it"))
	test.Tap(ct.rows["cursor"].Action)
	h.waitFor("preview", func() bool { return ct.Preview != nil })
	ct.Preview.Confirm()
	h.settle()
	if ct.rows["cursor"].State.text != "connected" {
		t.Error("a failed write changed the row")
	}
	if ov := h.u.Window.Canvas().Overlays().Top(); ov == nil || !strings.Contains(test.RenderObjectToMarkup(ov), "not valid JSON (line 3)") {
		t.Error("a failed write must show the error with what to fix")
	}
}

func TestAddServerDialog(t *testing.T) {
	core := simpleCore()
	h := newHarness(t, core)
	test.Tap(h.u.AddButton)
	d := h.u.AddDialog
	if d == nil {
		t.Fatal("no Add server dialog")
	}
	test.Tap(d.Submit)
	if !d.Err.Visible() || !strings.Contains(d.Err.Text, "URL") {
		t.Errorf("empty form error = %q", d.Err.Text)
	}
	test.Type(d.URL, "https://mcp.notion.com/mcp")
	if d.Name.Text != "notion" {
		t.Errorf("suggested name = %q, want notion", d.Name.Text)
	}
	d.Labels.SetText("team=docs")
	d.Auth.SetSelected("Bearer token")
	if !d.Secret.Visible() || d.HeaderName.Visible() || !d.Secret.Password {
		t.Error("bearer auth must show one masked secret field")
	}
	test.Tap(d.Submit)
	if !strings.Contains(d.Err.Text, "bearer token") {
		t.Errorf("missing token error = %q", d.Err.Text)
	}
	test.Type(d.Secret, "tok")
	test.Tap(d.Submit)
	h.waitFor("added", func() bool { return slices.Contains(h.shownNames(), "notion") })
	if !slices.Contains(core.Calls(), "AddServer notion https://mcp.notion.com/mcp bearer secrets=1") {
		t.Errorf("calls = %q", core.Calls())
	}
	if h.u.selected != "notion" || h.u.AddDialog != nil {
		t.Errorf("after add: selected %q, dialog open %t", h.u.selected, h.u.AddDialog != nil)
	}
	// A core error keeps the dialog open with the message.
	test.Tap(h.u.AddButton)
	d = h.u.AddDialog
	test.Type(d.URL, "https://alpha.example/mcp")
	d.Name.SetText("alpha")
	test.Tap(d.Submit)
	h.waitFor("error", func() bool { return d.Err.Visible() })
	if !strings.Contains(d.Err.Text, `A server named "alpha" exists`) {
		t.Errorf("duplicate error = %q", d.Err.Text)
	}
}

func TestImportFromRegistry(t *testing.T) {
	core := fakecore.Sample()
	h := newHarness(t, core)
	test.Tap(h.u.Import)
	d := h.u.ImportDialog
	test.Type(d.Query, "weather")
	test.Tap(d.Search)
	h.waitFor("results", func() bool { return len(d.results) == 1 })
	d.Results.Select(0)
	e := d.Secrets["X-API-Key"]
	if e == nil || !e.Password {
		t.Fatal("the import must ask for the X-API-Key secret header, masked")
	}
	test.Tap(d.Submit)
	if !strings.Contains(d.Err.Text, "X-API-Key") {
		t.Errorf("missing secret error = %q", d.Err.Text)
	}
	test.Type(e, "k")
	test.Tap(d.Submit)
	h.waitFor("imported", func() bool { return slices.Contains(h.shownNames(), "weather") })
	if !slices.Contains(core.Calls(), "ImportFromRegistry com.example/weather secrets=1") {
		t.Errorf("calls = %q", core.Calls())
	}
}

func TestSettingsMenu(t *testing.T) {
	t.Parallel()
	var got []string
	m := settingsMenu(false, true, "Only your own programs can use the proxies", func(on bool) { got = append(got, "autostart", map[bool]string{true: "on", false: "off"}[on]) },
		func(show bool) { got = append(got, "demo", map[bool]string{true: "show", false: "hide"}[show]) }, func() { got = append(got, "quit") })
	lines := menuLines(m)
	if !slices.Equal(lines, []string{"(disabled) Keyport " + app.Version, "(disabled) Only your own programs can use the proxies", "---", "[ ] Start Keyport at login", "[x] Show the demo server", "---", "[ ] Quit Keyport"}) {
		t.Errorf("settings menu = %q", lines)
	}
	for _, it := range m.Items {
		if it.Action != nil && !it.Disabled {
			it.Action()
		}
	}
	if !slices.Equal(got, []string{"autostart", "on", "demo", "hide", "quit"}) {
		t.Errorf("actions = %q", got)
	}
}

func TestAutostartAndDemoFromSettings(t *testing.T) {
	core := fakecore.Sample()
	h := newHarness(t, core)
	test.Tap(h.u.Settings)
	if top := h.u.Window.Canvas().Overlays().Top(); top == nil || !strings.Contains(test.RenderObjectToMarkup(top), "Start Keyport at login") {
		t.Fatal("the settings button shows no menu with the start-at-login option")
	}
	h.u.Window.Canvas().Overlays().Top().Hide()
	h.u.setAutostart(true)
	h.waitFor("autostart on", func() bool { return h.u.autostart })
	h.selectServer("demo")
	test.Tap(h.u.Detail.overview.Remove) // "Hide the demo server"
	h.waitFor("demo hidden", func() bool { return !slices.Contains(h.shownNames(), "demo") })
	if !slices.Contains(core.Calls(), "SetAutostart true") || !slices.Contains(core.Calls(), "SetDemoHidden true") {
		t.Errorf("calls = %q", core.Calls())
	}
}

func TestHoverShowsTheReason(t *testing.T) {
	h := newHarness(t, fakecore.Sample())
	r := h.row("warehouse")
	c := h.u.Window.Canvas()
	at := &desktop.MouseEvent{PointEvent: fyne.PointEvent{AbsolutePosition: fyne.NewPos(20, 500)}}
	r.dot.MouseIn(at)
	top := c.Overlays().Top()
	if top == nil || !strings.Contains(test.RenderObjectToMarkup(top), "port 41005 is taken by another program") {
		t.Fatalf("hovering the status dot shows no tooltip with the reason")
	}
	r.dot.MouseOut()
	if c.Overlays().Top() != nil {
		t.Error("the tooltip stays after the pointer left")
	}
	// The truncated inline error shows in full on hover too.
	r.probTip.MouseIn(at)
	if top := c.Overlays().Top(); top == nil || !strings.Contains(test.RenderObjectToMarkup(top), "pick a new port") {
		t.Error("hovering the inline error shows no tooltip with its full text")
	}
	r.probTip.MouseOut()
}

// TestEventBurstsCoalesce checks that a burst of status events (a proxy
// under traffic) costs a few refreshes, not one per event.
func TestEventBurstsCoalesce(t *testing.T) {
	core := fakecore.New(app.ServerView{Name: "a", Enabled: true, State: app.ProxyRunning})
	fa := test.NewTempApp(t)
	q := make(chan func(), 4096)
	refreshes := 0 // counted on the test goroutine, which runs the queue
	counted := func(f func()) func() { return func() { refreshes++; f() } }
	// (The counting do is given from the start: the UI's background
	// goroutines read u.do, so it must not change under them.)
	u := newUI(fa, core, options{do: func(f func()) { q <- counted(f) }, throttle: 50 * time.Millisecond})
	h := &harness{t: t, app: fa, u: u, core: core, q: q}
	t.Cleanup(func() { u.Close(); h.settle() })
	h.settle()
	refreshes = 0 // what building the window queued does not count
	const events = 200
	for i := 0; i < events; i++ {
		core.Update("a", func(s *app.ServerView) { s.Counters.Requests++ })
		if i%50 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	h.waitFor("the last count shown", func() bool {
		return u.Detail.overview.counters["Requests"].Text == fmt.Sprint(events)
	})
	time.Sleep(100 * time.Millisecond)
	h.settle()
	t.Logf("%d events, %d refreshes", events, refreshes)
	if refreshes == 0 || refreshes > 20 {
		t.Errorf("%d events caused %d refreshes, want a handful", events, refreshes)
	}
}

func TestClientPreviewCancelWritesNothing(t *testing.T) {
	core := fakecore.Sample()
	h := newHarness(t, core)
	h.selectServer("github")
	h.selectTab("Clients")
	ct := h.u.Detail.clients
	test.Tap(ct.rows["claude-code"].Action)
	h.waitFor("preview", func() bool { return ct.Preview != nil })
	c := h.u.Window.Canvas()
	if top := c.Overlays().Top(); top == nil || !strings.Contains(test.RenderObjectToMarkup(top), "Write the change") {
		t.Fatal("no preview dialog with a Write button")
	}
	ct.Preview.dialog.Hide() // Cancel
	h.settle()
	if ct.Preview != nil || c.Overlays().Top() != nil {
		t.Error("the preview stays after Cancel")
	}
	for _, call := range core.Calls() {
		if strings.HasPrefix(call, "ApplyClient") {
			t.Errorf("Cancel wrote: %s", call)
		}
	}
	// Confirming closes the dialog and writes once.
	test.Tap(ct.rows["claude-code"].Action)
	h.waitFor("preview", func() bool { return ct.Preview != nil })
	p := ct.Preview
	p.Confirm()
	p.Confirm()
	h.waitFor("written", func() bool { return ct.rows["claude-code"].State.text == "connected" })
	n := 0
	for _, call := range core.Calls() {
		if strings.HasPrefix(call, "ApplyClient claude-code") {
			n++
		}
	}
	if n != 1 || c.Overlays().Top() != nil {
		t.Errorf("confirm wrote %d times; dialog open: %t", n, c.Overlays().Top() != nil)
	}
}

// TestToolsLoadErrorStays: a failed tool listing stays visible (in red)
// through later refreshes, and the next server starts clean.
func TestToolsLoadErrorStays(t *testing.T) {
	core := fakecore.Sample()
	h := newHarness(t, core)
	h.selectServer("sentry") // running state unreachable: Tools answers an error
	core.Update("sentry", func(s *app.ServerView) { s.State = app.ProxyRunning })
	h.settle()
	h.selectTab("Tools")
	tools := h.u.Detail.tools
	// The fake lists no tools for sentry but succeeds; make it fail instead.
	core.Update("sentry", func(s *app.ServerView) { s.State = app.ProxyUnreachable })
	h.settle()
	test.Tap(tools.Load)
	h.waitFor("the error", func() bool { return strings.HasPrefix(tools.Status.Text, "Could not list the tools") })
	core.Update("sentry", func(s *app.ServerView) { s.Counters.Requests++ })
	h.settle()
	if !strings.HasPrefix(tools.Status.Text, "Could not list the tools") || tools.Status.Importance != widget.DangerImportance {
		t.Errorf("after a refresh the status reads %q (importance %v)", tools.Status.Text, tools.Status.Importance)
	}
	h.selectServer("github")
	if strings.HasPrefix(tools.Status.Text, "Could not") || tools.Status.Importance == widget.DangerImportance {
		t.Errorf("the next server shows the old error: %q", tools.Status.Text)
	}
}
