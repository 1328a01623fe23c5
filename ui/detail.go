package ui

import (
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"keyport/app"
	"keyport/app/telemetry"
)

// detail is the right-hand pane: the selected server's header (status and
// switch) above four tabs — Overview, Tools, Audit and Clients.
type detail struct {
	u    *UI
	root *fyne.Container

	placeholder *fyne.Container
	body        *fyne.Container

	Title    *widget.Label
	Status   *widget.Label
	Dot      *statusDot
	Switch   *Switch
	Tabs     *container.AppTabs
	overview *overviewTab
	tools    *toolsTab
	audit    *auditTab
	clients  *clientsTab

	view *rowView // what is shown; nil when nothing is selected
}

func newDetail(u *UI) *detail {
	d := &detail{u: u}
	d.Title = heading("")
	d.Title.SizeName = theme.SizeNameSubHeadingText
	d.Title.Truncation = fyne.TextTruncateEllipsis
	d.Status = widget.NewLabel("")
	d.Status.Truncation = fyne.TextTruncateEllipsis
	d.Dot = newStatusDot()
	d.Switch = NewSwitch(func(on bool) {
		if d.view != nil {
			u.toggle(d.view.Name, on)
		}
	})
	d.overview = newOverviewTab(u)
	d.tools = newToolsTab(u)
	d.audit = newAuditTab(u)
	d.clients = newClientsTab(u)
	d.Tabs = container.NewAppTabs(
		container.NewTabItemWithIcon("Overview", theme.InfoIcon(), d.overview.root),
		container.NewTabItemWithIcon("Tools", theme.ListIcon(), d.tools.root),
		container.NewTabItemWithIcon("Audit", theme.HistoryIcon(), d.audit.root),
		container.NewTabItemWithIcon("Clients", theme.ComputerIcon(), d.clients.root),
	)
	d.Tabs.OnSelected = func(*container.TabItem) { d.tabShown() }
	header := container.NewBorder(nil, nil, container.NewCenter(d.Dot), container.NewCenter(d.Switch),
		container.New(tightVBox{}, d.Title, d.Status))
	d.body = container.NewBorder(container.NewPadded(header), nil, nil, nil, d.Tabs)
	hint := subtle("Select a server to see its credentials, tool policy, audit log and clients.").wrap()
	hint.seg.Style.Alignment = fyne.TextAlignCenter
	d.placeholder = container.NewCenter(container.NewGridWrap(fyne.NewSize(300, 80), hint))
	d.root = container.NewStack(d.placeholder, d.body)
	d.body.Hide()
	return d
}

// show displays v (nil: nothing selected). It is called on every refresh,
// so it updates in place and keeps unsaved edits of the same server.
func (d *detail) show(v *rowView) {
	prev := d.view
	d.view = v
	if v == nil {
		d.body.Hide()
		d.placeholder.Show()
		return
	}
	d.placeholder.Hide()
	d.body.Show()
	changed := prev == nil || prev.Name != v.Name
	d.Title.SetText(v.Name)
	st := v.displayState()
	d.Dot.set(st, statusTip(v.ServerView))
	d.Status.SetText(statusLine(*v))
	d.Status.Importance = statusImportance(*v)
	d.Status.Refresh()
	d.Switch.SetOn(v.pending && v.want || !v.pending && v.Enabled)
	if v.pending {
		d.Switch.Disable()
	} else {
		d.Switch.Enable()
	}
	d.overview.show(*v)
	d.tools.show(*v, changed)
	d.audit.show(*v, changed)
	d.clients.show(*v, changed)
	if changed {
		d.tabShown()
	}
}

// tabShown loads what the visible tab needs (tools, audit entries).
func (d *detail) tabShown() {
	if d.view == nil {
		return
	}
	switch d.Tabs.Selected().Text {
	case "Tools":
		d.tools.autoload()
	case "Audit":
		d.audit.reload()
	case "Clients":
		d.clients.refresh()
	}
}

// statusLine is the one-line status under a server's name.
func statusLine(v rowView) string {
	if p, _ := v.problem(); p != "" {
		return p
	}
	switch v.displayState() {
	case app.ProxyStarting:
		return "Starting the proxy…"
	case app.ProxyRunning:
		return "Running on " + v.LocalURL
	default:
		if v.pending {
			return "Stopping the proxy…"
		}
		return "Stopped. Turn it on to give your clients a local URL."
	}
}

func statusImportance(v rowView) widget.Importance {
	if p, imp := v.problem(); p != "" {
		return imp
	}
	if v.displayState() == app.ProxyRunning {
		return widget.SuccessImportance
	}
	return widget.MediumImportance
}

// overviewTab shows the upstream, the credential and the traffic counters.
type overviewTab struct {
	u    *UI
	root fyne.CanvasObject

	Upstream   *widget.Label
	LocalURL   *widget.Label
	Auth       *widget.Label
	Desc       *widget.Label
	labels     *fyne.Container
	Credential *widget.Label
	SetCred    *widget.Button
	ClearCred  *widget.Button
	SignIn     *widget.Button
	Remove     *widget.Button
	Managed    *widget.Label // what the organization's managed settings set
	Telemetry  *widget.Label // the OpenTelemetry export's status
	counters   map[string]*widget.Label
	foreign    fyne.CanvasObject // the "Other users" counter, shown once one was refused
	body       *fyne.Container

	name string
	view app.ServerView

	telAt  time.Time // when the export status was last asked for
	telFor string
}

// loadTelemetry asks the core for the export's status off the fyne
// goroutine (the core may be another process).
func (t *overviewTab) loadTelemetry() {
	t.u.bg(func() {
		st := t.u.core.Telemetry()
		t.u.do(func() { t.Telemetry.SetText(telemetryText(st)) })
	})
}

var counterNames = []string{"Requests", "Errors", "Denials", "Latency p50", "Received", "Sent", "Sessions", "Streams", counterForeign}

// counterForeign counts requests refused because they came from another
// user of the computer; it shows only once there is one.
const counterForeign = "Other users"

func newOverviewTab(u *UI) *overviewTab {
	t := &overviewTab{u: u, counters: map[string]*widget.Label{}}
	mono := func() *widget.Label {
		l := widget.NewLabel("")
		l.TextStyle.Monospace = true
		l.Truncation = fyne.TextTruncateEllipsis
		return l
	}
	t.Upstream, t.LocalURL = mono(), mono()
	t.Auth = widget.NewLabel("")
	t.Desc = widget.NewLabel("")
	t.Desc.Wrapping = fyne.TextWrapWord
	t.labels = container.New(chipsLayout{})
	t.Managed = widget.NewLabel("")
	t.Managed.Wrapping = fyne.TextWrapWord
	t.Telemetry = widget.NewLabel("")
	t.Telemetry.Wrapping = fyne.TextWrapWord
	t.Credential = widget.NewLabel("")
	t.Credential.Wrapping = fyne.TextWrapWord
	t.SetCred = widget.NewButtonWithIcon("Set…", theme.AccountIcon(), func() { u.showSecretDialog(t.view) })
	t.ClearCred = widget.NewButtonWithIcon("Clear", theme.DeleteIcon(), func() { u.clearSecrets(t.name) })
	t.SignIn = widget.NewButtonWithIcon("Sign in…", theme.LoginIcon(), func() { u.signIn(t.name) })
	t.SignIn.Importance = widget.HighImportance
	t.Remove = widget.NewButtonWithIcon("Remove server…", theme.DeleteIcon(), func() { u.confirmRemove(t.view) })
	t.Remove.Importance = widget.DangerImportance
	var copyLocal *widget.Button
	copyLocal = widget.NewButtonWithIcon("", theme.ContentCopyIcon(), func() {
		if t.view.LocalURL != "" {
			u.copyURL(t.view.LocalURL, copyLocal)
		}
	})
	copyLocal.Importance = widget.LowImportance

	key := func(s string) fyne.CanvasObject { return subtle(s) }
	facts := container.New(layout.NewFormLayout(),
		key("Upstream"), t.Upstream,
		key("Local URL"), container.NewBorder(nil, nil, nil, copyLocal, t.LocalURL),
		key("Auth"), t.Auth,
		key("Labels"), t.labels,
		key("Managed"), t.Managed,
	)
	grid := container.NewGridWithColumns(4)
	for _, n := range counterNames {
		v := widget.NewLabel("0")
		v.TextStyle.Bold = true
		v.Alignment = fyne.TextAlignCenter
		c := subtle(n)
		c.seg.Style.Alignment = fyne.TextAlignCenter
		c.seg.Style.SizeName = theme.SizeNameCaptionText
		t.counters[n] = v
		cell := container.New(tightVBox{}, v, c)
		if n == counterForeign {
			t.foreign = cell
			cell.Hide()
		}
		grid.Add(cell)
	}
	credButtons := container.NewHBox(t.SetCred, t.ClearCred, t.SignIn)
	t.body = container.NewVBox(
		t.Desc,
		facts,
		widget.NewSeparator(),
		container.NewBorder(nil, nil, nil, container.NewCenter(credButtons), container.New(tightVBox{}, heading("Credential"), t.Credential)),
		widget.NewSeparator(),
		heading("Traffic since the proxy started"),
		grid,
		widget.NewSeparator(),
		container.New(tightVBox{}, heading("Audit export (OpenTelemetry)"), t.Telemetry),
		widget.NewSeparator(),
		container.NewHBox(layout.NewSpacer(), t.Remove),
	)
	t.root = container.NewVScroll(container.NewPadded(t.body))
	return t
}

func (t *overviewTab) show(v rowView) {
	t.name, t.view = v.Name, v.ServerView
	t.Desc.SetText(orDefault(v.Description, "No description."))
	t.Upstream.SetText(v.UpstreamURL)
	if v.LocalURL == "" {
		t.LocalURL.TextStyle.Monospace = false
		t.LocalURL.SetText("none yet: turn the proxy on")
	} else {
		t.LocalURL.TextStyle.Monospace = true
		t.LocalURL.SetText(v.LocalURL)
	}
	t.Auth.SetText(authText(v.AuthType))
	t.Managed.SetText(managedText(v.ServerView))
	if v.Managed || len(v.ManagedDeny) > 0 || v.ManagedPinning != "" {
		t.Managed.Importance = widget.HighImportance
	} else {
		t.Managed.Importance = widget.MediumImportance
	}
	t.Managed.Refresh()
	if v.Managed {
		t.Remove.Disable()
	} else {
		t.Remove.Enable()
	}
	if time.Since(t.telAt) > 2*time.Second || t.telFor != v.Name {
		t.telAt, t.telFor = time.Now(), v.Name
		t.loadTelemetry()
	}

	labels := sortedLabels(v.Labels)
	t.labels.Objects = nil
	for _, l := range labels {
		t.labels.Add(newChip(l, ""))
	}
	if len(labels) == 0 {
		t.labels.Add(newChip("none", ""))
	}
	t.labels.Refresh()

	cred := v.Credential
	oauth := v.AuthType == "oauth"
	switch {
	case !cred.Needed && !oauth:
		t.Credential.SetText("This server needs no credential.")
		t.Credential.Importance = widget.MediumImportance
	case oauth && cred.SignInNeeded:
		t.Credential.SetText("Sign in needed: choose Sign in to open your browser.")
		t.Credential.Importance = widget.WarningImportance
	case oauth:
		t.Credential.SetText("Signed in. The token is kept in your OS keychain.")
		t.Credential.Importance = widget.SuccessImportance
	case cred.Set:
		t.Credential.SetText("Stored in your OS keychain (" + strings.Join(cred.Kinds, ", ") + ").")
		t.Credential.Importance = widget.SuccessImportance
	default:
		t.Credential.SetText("Missing from the keychain: " + strings.Join(cred.Missing, ", ") + ". Choose Set to add it; requests fail until then.")
		t.Credential.Importance = widget.WarningImportance
	}
	t.Credential.Refresh()
	showIf(t.SetCred, cred.Needed && !oauth)
	if cred.Set || len(cred.Missing) < len(cred.Kinds) {
		t.SetCred.SetText("Replace…")
	} else {
		t.SetCred.SetText("Set…")
	}
	showIf(t.ClearCred, (cred.Needed || oauth) && (cred.Set || oauth && !cred.SignInNeeded))
	showIf(t.SignIn, oauth)
	if oauth && !cred.SignInNeeded {
		t.SignIn.SetText("Sign in again…")
		t.SignIn.Importance = widget.MediumImportance
	} else {
		t.SignIn.SetText("Sign in…")
		t.SignIn.Importance = widget.HighImportance
	}
	t.SignIn.Refresh()
	if v.Demo {
		t.Remove.SetText("Hide the demo server")
	} else {
		t.Remove.SetText("Remove server…")
	}

	c := v.Counters
	set := func(k, s string) {
		if l := t.counters[k]; l.Text != s {
			l.SetText(s)
		}
	}
	set("Requests", fmt.Sprint(c.Requests))
	set("Errors", fmt.Sprint(c.Errors))
	set("Denials", fmt.Sprint(c.Denials))
	set("Latency p50", durationText(c.LatencyP50))
	set("Received", humanBytes(c.BytesIn))
	set("Sent", humanBytes(c.BytesOut))
	set("Sessions", fmt.Sprint(c.Sessions))
	set("Streams", fmt.Sprint(c.Streams))
	set(counterForeign, fmt.Sprint(c.ForeignPeers))
	showIf(t.foreign, c.ForeignPeers > 0)
	t.body.Refresh() // buttons were shown or hidden: lay out again
}

func showIf(o fyne.CanvasObject, visible bool) {
	if visible {
		o.Show()
	} else {
		o.Hide()
	}
}

func authText(kind string) string {
	switch kind {
	case "bearer":
		return "Bearer token"
	case "headers":
		return "Secret headers"
	case "oauth":
		return "OAuth sign-in"
	default:
		return "None"
	}
}

func durationText(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}

// showErrorDialog shows what failed and why; the core's errors say what to do.
func showErrorDialog(w fyne.Window, what string, err error) {
	dialog.ShowError(fmt.Errorf("%s: %w", what, err), w)
}

// managedText says what the organization's managed settings set on a
// server ("set by your organization"), or that they set nothing.
func managedText(v app.ServerView) string {
	var parts []string
	if v.Managed {
		parts = append(parts, "this server is set by your organization: it cannot be edited or removed here")
	}
	if len(v.ManagedDeny) > 0 && !v.Managed {
		parts = append(parts, "deny "+strings.Join(v.ManagedDeny, ", ")+" set by your organization")
	} else if len(v.ManagedDeny) > 0 {
		parts = append(parts, "its deny patterns "+strings.Join(v.ManagedDeny, ", ")+" too")
	}
	if v.ManagedPinning != "" {
		parts = append(parts, "tool pinning "+v.ManagedPinning+" set by your organization")
	}
	if len(parts) == 0 {
		return "No: your own settings"
	}
	s := strings.Join(parts, "; ")
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

// telemetryText is the export's status in one or two lines: per exporter
// whether the collector takes it, the backlog and the last error.
func telemetryText(st telemetry.Status) string {
	if !st.Enabled {
		if st.Reason == "" {
			return "Off."
		}
		return "Off: " + st.Reason + "."
	}
	by := ""
	if st.Managed {
		by = " (set by your organization)"
	}
	lines := []string{"To " + st.Endpoint + by + "."}
	for _, s := range st.Signals {
		state := "connected"
		if !s.Connected {
			state = "not connected"
		}
		l := fmt.Sprintf("%s: %s, backlog %s", s.Signal, state, humanBytes(s.BacklogBytes))
		if s.OverLimit {
			l += " (over its limit)"
		}
		if s.LastError != "" && !s.Connected {
			l += " — " + s.LastError
		}
		lines = append(lines, l)
	}
	if !st.Active && st.Reason != "" {
		lines = append(lines, st.Reason)
	}
	return strings.Join(lines, "\n")
}
