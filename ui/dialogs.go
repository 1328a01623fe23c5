package ui

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"keyport/app"
)

// formDialog is a dialog with a form, an inline error line and buttons that
// stay open while the core works, so a failure shows where the user typed.
type formDialog struct {
	d       *dialog.CustomDialog
	content *fyne.Container
	width   float32
	Err     *widget.Label
	Submit  *widget.Button
	Cancel  *widget.Button
}

func newFormDialog(w fyne.Window, title, submit string, body fyne.CanvasObject, minW float32) *formDialog {
	f := &formDialog{Err: widget.NewLabel("")}
	f.Err.Importance = widget.DangerImportance
	f.Err.Wrapping = fyne.TextWrapWord
	f.Err.Hide()
	f.Submit = widget.NewButton(submit, nil)
	f.Submit.Importance = widget.HighImportance
	f.Cancel = widget.NewButton("Cancel", nil)
	f.content = container.NewVBox(body, f.Err)
	f.width = minW
	f.d = dialog.NewCustomWithoutButtons(title, f.content, w)
	f.d.SetButtons([]fyne.CanvasObject{f.Cancel, f.Submit})
	f.Cancel.OnTapped = f.d.Hide
	f.fit()
	return f
}

// fit resizes the dialog to its content after fields appear or disappear.
func (f *formDialog) fit() {
	f.content.Refresh()
	f.d.Resize(fyne.NewSize(f.width, f.content.MinSize().Height))
}

func (f *formDialog) fail(err error) {
	f.Submit.Enable()
	f.Err.SetText(sentence(err.Error()))
	f.Err.Show()
	f.fit()
}

// sentence capitalises an error text (Go errors start lower-case) for
// display on its own.
func sentence(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

func (f *formDialog) busy() {
	f.Submit.Disable()
	f.Err.Hide()
}

// AddServerDialog is the Add server form; UI.AddDialog holds the open one.
type AddServerDialog struct {
	*formDialog
	URL, Name, Description, Labels *widget.Entry
	Auth                           *widget.Select
	HeaderName                     *widget.Entry
	Secret                         *widget.Entry
}

var authOptions = []string{"None", "Bearer token", "Secret header", "OAuth sign-in"}

func authKind(opt string) string {
	switch opt {
	case "Bearer token":
		return "bearer"
	case "Secret header":
		return "headers"
	case "OAuth sign-in":
		return "oauth"
	default:
		return "none"
	}
}

// showAddServer opens the Add server dialog.
func (u *UI) showAddServer() {
	a := &AddServerDialog{}
	a.URL = widget.NewEntry()
	a.URL.SetPlaceHolder("https://mcp.example.com/mcp")
	a.Name = widget.NewEntry()
	a.Name.SetPlaceHolder("example (lowercase letters, digits, dashes)")
	a.Description = widget.NewEntry()
	a.Description.SetPlaceHolder("What it is for")
	a.Labels = widget.NewEntry()
	a.Labels.SetPlaceHolder("env=prod, team=core")
	a.HeaderName = widget.NewEntry()
	a.HeaderName.SetPlaceHolder("X-API-Key")
	a.Secret = widget.NewPasswordEntry()
	a.Secret.SetPlaceHolder("stored in your OS keychain only")
	a.Auth = widget.NewSelect(authOptions, nil)
	base := []*widget.FormItem{
		widget.NewFormItem("URL", a.URL),
		widget.NewFormItem("Name", a.Name),
		widget.NewFormItem("Description", a.Description),
		widget.NewFormItem("Labels", a.Labels),
		widget.NewFormItem("Auth", a.Auth),
	}
	headerItem := widget.NewFormItem("Header", a.HeaderName)
	secretItem := widget.NewFormItem("Secret", a.Secret)
	form := widget.NewForm(base...)
	a.Auth.OnChanged = func(opt string) {
		// The form shows only the fields the auth kind needs.
		items := append([]*widget.FormItem(nil), base...)
		switch authKind(opt) {
		case "bearer":
			secretItem.Text = "Token"
			items = append(items, secretItem)
		case "headers":
			secretItem.Text = "Value"
			items = append(items, headerItem, secretItem)
		}
		showIf(a.HeaderName, authKind(opt) == "headers")
		showIf(a.Secret, len(items) > len(base))
		form.Items = items
		form.Refresh()
		if a.formDialog != nil {
			a.fit()
		}
	}
	a.Auth.SetSelected("None")
	suggested := ""
	a.URL.OnChanged = func(s string) {
		// Suggest a name from the host until the user types one.
		if a.Name.Text == suggested {
			suggested = suggestName(s)
			a.Name.SetText(suggested)
		}
	}
	a.formDialog = newFormDialog(u.Window, "Add server", "Add", form, 520)
	a.Submit.OnTapped = func() {
		ns, err := a.server()
		if err != nil {
			a.fail(err)
			return
		}
		a.busy()
		u.bg(func() {
			err := u.core.AddServer(ns)
			u.do(func() {
				if err != nil {
					a.fail(err)
					return
				}
				a.d.Hide()
				u.AddDialog = nil
				u.selected = ns.Name
				u.refreshServers()
			})
		})
	}
	u.AddDialog = a
	a.d.Show()
	u.Window.Canvas().Focus(a.URL)
}

// server checks the form and returns what to submit.
func (a *AddServerDialog) server() (app.NewServer, error) {
	ns := app.NewServer{
		Name:        strings.TrimSpace(a.Name.Text),
		URL:         strings.TrimSpace(a.URL.Text),
		Description: strings.TrimSpace(a.Description.Text),
		AuthType:    authKind(a.Auth.Selected),
	}
	if ns.URL == "" {
		return ns, errors.New("enter the server's URL, e.g. https://mcp.example.com/mcp")
	}
	if u, err := url.Parse(ns.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ns, fmt.Errorf("%q is not an http(s) URL: enter it like https://mcp.example.com/mcp", ns.URL)
	}
	if ns.Name == "" {
		return ns, errors.New("enter a name for the server (lowercase letters, digits, dashes)")
	}
	labels, err := parseLabels(a.Labels.Text)
	if err != nil {
		return ns, err
	}
	ns.Labels = labels
	secret := a.Secret.Text
	switch ns.AuthType {
	case "bearer":
		if secret == "" {
			return ns, errors.New("enter the bearer token, or choose Auth: None")
		}
		ns.Secrets = map[string]string{"bearer": secret}
	case "headers":
		h := strings.TrimSpace(a.HeaderName.Text)
		if h == "" || strings.ContainsAny(h, " :\t") {
			return ns, errors.New("enter the secret header's name, e.g. X-API-Key")
		}
		if secret == "" {
			return ns, fmt.Errorf("enter the value of %s", h)
		}
		ns.Secrets = map[string]string{"header/" + h: secret}
	}
	return ns, nil
}

// parseLabels reads "k=v, k2=v2".
func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("label %q: write labels as key=value, separated by commas", part)
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// suggestName derives a catalog name from a URL's host: mcp.linear.app -> linear.
func suggestName(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Hostname() == "" {
		return ""
	}
	parts := strings.Split(u.Hostname(), ".")
	skip := map[string]bool{"mcp": true, "www": true, "api": true}
	for _, p := range parts {
		if !skip[p] && p != "" {
			return strings.ToLower(p)
		}
	}
	return strings.ToLower(parts[0])
}

// ImportDialog is the Import from registry dialog.
type ImportDialog struct {
	*formDialog
	Query   *widget.Entry
	Search  *widget.Button
	Results *widget.List
	Status  *widget.Label
	Secrets map[string]*widget.Entry // secret header -> entry, for the chosen result
	secBox  *fyne.Container

	results []app.RegistryResult
	chosen  int
	seq     int
}

// showImport opens the Import from registry dialog.
func (u *UI) showImport() {
	im := &ImportDialog{chosen: -1, Secrets: map[string]*widget.Entry{}}
	im.Query = widget.NewEntry()
	im.Query.SetPlaceHolder("Search the MCP registry, e.g. github")
	im.Status = widget.NewLabel("Search by name or topic.")
	im.Status.Wrapping = fyne.TextWrapWord
	im.Results = widget.NewList(
		func() int { return len(im.results) },
		func() fyne.CanvasObject {
			t := widget.NewLabel("")
			t.TextStyle.Bold = true
			t.Truncation = fyne.TextTruncateEllipsis
			return container.New(tightVBox{}, t, subtleTrunc(""))
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			r := im.results[id]
			objs := o.(*fyne.Container).Objects
			objs[0].(*widget.Label).SetText(orDefault(r.Title, r.Name) + "  ·  " + r.ID)
			objs[1].(*subtleText).SetText(orDefault(r.Description, r.URL))
		})
	im.secBox = container.NewVBox()
	search := func() {
		q := strings.TrimSpace(im.Query.Text)
		im.seq++
		seq := im.seq
		im.Status.SetText("Searching…")
		u.bg(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			res, err := u.core.SearchRegistry(ctx, q)
			cancel()
			u.do(func() {
				if seq != im.seq {
					return
				}
				if err != nil {
					im.Status.SetText("Search failed: " + err.Error())
					return
				}
				im.results, im.chosen = res, -1
				im.Results.UnselectAll()
				im.Results.Refresh()
				im.choose(-1)
				if len(res) == 0 {
					im.Status.SetText(fmt.Sprintf("No server found for %q.", q))
				} else {
					im.Status.SetText(fmt.Sprintf("%d found. Select one to import.", len(res)))
				}
			})
		})
	}
	im.Search = widget.NewButtonWithIcon("Search", theme.SearchIcon(), search)
	im.Query.OnSubmitted = func(string) { search() }
	im.Results.OnSelected = func(id widget.ListItemID) { im.choose(id) }
	list := container.NewGridWrap(fyne.NewSize(540, 220), im.Results)
	body := container.NewVBox(
		container.NewBorder(nil, nil, nil, im.Search, im.Query),
		im.Status, list, im.secBox)
	im.formDialog = newFormDialog(u.Window, "Import from registry", "Import", body, 580)
	im.Submit.Disable()
	im.Submit.OnTapped = func() {
		if im.chosen < 0 {
			return
		}
		r := im.results[im.chosen]
		secrets := map[string]string{}
		for _, h := range r.SecretHeaders {
			v := im.Secrets[h].Text
			if v == "" {
				im.fail(fmt.Errorf("enter the value of %s: %s needs it", h, r.Name))
				return
			}
			secrets[h] = v
		}
		im.busy()
		u.bg(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := u.core.ImportFromRegistry(ctx, r, secrets)
			cancel()
			u.do(func() {
				if err != nil {
					im.fail(err)
					return
				}
				im.d.Hide()
				u.ImportDialog = nil
				u.selected = r.Name
				u.refreshServers()
			})
		})
	}
	u.ImportDialog = im
	im.d.Show()
	u.Window.Canvas().Focus(im.Query)
}

// choose shows the secret header fields of result id (-1: none).
func (im *ImportDialog) choose(id int) {
	im.chosen = id
	im.Secrets = map[string]*widget.Entry{}
	im.secBox.Objects = nil
	if id < 0 {
		im.Submit.Disable()
		im.secBox.Refresh()
		im.fit()
		return
	}
	r := im.results[id]
	if len(r.SecretHeaders) > 0 {
		form := widget.NewForm()
		headers := append([]string(nil), r.SecretHeaders...)
		sort.Strings(headers)
		for _, h := range headers {
			e := widget.NewPasswordEntry()
			e.SetPlaceHolder("stored in your OS keychain only")
			im.Secrets[h] = e
			form.Append(h, e)
		}
		note := widget.NewLabel(r.Name + " needs these secret headers:")
		im.secBox.Objects = []fyne.CanvasObject{note, form}
	}
	im.secBox.Refresh()
	im.Submit.Enable()
	im.fit()
}

// SecretDialog sets or replaces a server's credential items.
type SecretDialog struct {
	*formDialog
	Entries map[string]*widget.Entry // kind -> masked entry
}

// showSecretDialog asks for every credential kind of v (masked) and stores
// the ones filled in.
func (u *UI) showSecretDialog(v app.ServerView) {
	kinds := v.Credential.Kinds
	if len(kinds) == 0 {
		kinds = v.Credential.Missing
	}
	if len(kinds) == 0 && v.AuthType == "bearer" {
		kinds = []string{"bearer"}
	}
	s := &SecretDialog{Entries: map[string]*widget.Entry{}}
	form := widget.NewForm()
	for _, k := range kinds {
		e := widget.NewPasswordEntry()
		if slices.Contains(v.Credential.Missing, k) {
			e.SetPlaceHolder("missing")
		} else {
			e.SetPlaceHolder("set (leave empty to keep)")
		}
		s.Entries[k] = e
		form.Append(kindLabel(k), e)
	}
	note := subtle("Stored in your OS keychain only; never in a file or log.")
	s.formDialog = newFormDialog(u.Window, "Credential for "+v.Name, "Save", container.NewVBox(form, note), 460)
	name := v.Name
	s.Submit.OnTapped = func() {
		values := map[string]string{}
		for k, e := range s.Entries {
			if e.Text != "" {
				values[k] = e.Text
			}
		}
		if len(values) == 0 {
			s.fail(errors.New("type the secret to store, or Cancel"))
			return
		}
		s.busy()
		u.bg(func() {
			var err error
			for k, val := range values {
				if err = u.core.SetSecret(name, k, val); err != nil {
					err = fmt.Errorf("%s: %w", kindLabel(k), err)
					break
				}
			}
			u.do(func() {
				if err != nil {
					s.fail(err)
					return
				}
				s.d.Hide()
				u.SecretDialog = nil
				u.refreshServers()
			})
		})
	}
	u.SecretDialog = s
	s.d.Show()
}

// kindLabel is how a credential kind reads: "bearer" -> "Bearer token".
func kindLabel(kind string) string {
	if h, ok := strings.CutPrefix(kind, "header/"); ok {
		return h
	}
	if kind == "bearer" {
		return "Bearer token"
	}
	return kind
}

// clearSecrets asks, then removes a server's credentials from the keychain.
func (u *UI) clearSecrets(name string) {
	dialog.ShowConfirm("Clear credentials?", "Remove "+name+"'s credentials from your OS keychain? Requests through its proxy fail until you set them again.", func(ok bool) {
		if !ok {
			return
		}
		u.bg(func() {
			err := u.core.ClearSecrets(name)
			u.do(func() {
				if err != nil {
					u.showError("Clear "+name+"'s credentials", err)
				}
				u.refreshServers()
			})
		})
	}, u.Window)
}

// confirmRemove asks, then removes a server (or hides the demo server).
func (u *UI) confirmRemove(v app.ServerView) {
	name := v.Name
	if v.Demo {
		u.bg(func() {
			err := u.core.SetDemoHidden(true)
			u.do(func() {
				if err != nil {
					u.showError("Hide the demo server", err)
				}
				u.refreshServers()
			})
		})
		return
	}
	dialog.ShowConfirm("Remove "+name+"?", "This stops its proxy, deletes its credentials from the keychain and removes its entries from your clients' config files.", func(ok bool) {
		if !ok {
			return
		}
		u.bg(func() {
			err := u.core.RemoveServer(name)
			u.do(func() {
				if err != nil {
					u.showError("Remove "+name, err)
				}
				u.refreshServers()
			})
		})
	}, u.Window)
}

// settingsMenu is the settings pop-up's menu: start at login and the demo
// server, under the About lines (the version, and whether other users of
// the computer are kept out of the proxies: peerCheck). It is a pure
// function of the current settings.
func settingsMenu(autostart, demoShown bool, peerCheck string, setAutostart, setDemo func(bool), quit func()) *fyne.Menu {
	about := fyne.NewMenuItem("Keyport "+app.Version, nil)
	about.Disabled = true
	peers := fyne.NewMenuItem(peerCheck, nil)
	peers.Disabled = true
	login := fyne.NewMenuItem("Start Keyport at login", func() { setAutostart(!autostart) })
	login.Checked = autostart
	demo := fyne.NewMenuItem("Show the demo server", func() { setDemo(!demoShown) })
	demo.Checked = demoShown
	q := fyne.NewMenuItem("Quit Keyport", quit)
	return fyne.NewMenu("Settings", about, peers, fyne.NewMenuItemSeparator(), login, demo, fyne.NewMenuItemSeparator(), q)
}

// showSettingsMenu pops the settings menu up under the settings button.
func (u *UI) showSettingsMenu() {
	demoShown := false
	for _, s := range u.servers {
		demoShown = demoShown || s.Demo
	}
	m := settingsMenu(u.autostart, demoShown, app.PeerCheckLine(), u.setAutostart, func(show bool) {
		u.bg(func() {
			err := u.core.SetDemoHidden(!show)
			u.do(func() {
				if err != nil {
					u.showError("Change the demo server", err)
				}
				u.refreshServers()
			})
		})
	}, u.QuitKeyport)
	c := u.Window.Canvas()
	pos := fyne.CurrentApp().Driver().AbsolutePositionForObject(u.Settings).Add(fyne.NewPos(0, u.Settings.Size().Height))
	pop := widget.NewPopUpMenu(m, c)
	pop.ShowAtPosition(pos.Subtract(fyne.NewPos(pop.MinSize().Width-u.Settings.Size().Width, 0)))
}

// setAutostart turns start-at-login on or off in the background.
func (u *UI) setAutostart(on bool) {
	u.bg(func() {
		err := u.core.SetAutostart(on)
		now := u.core.Autostart()
		u.do(func() {
			u.autostart = now
			if err != nil {
				u.showError("Start at login", err)
			}
		})
	})
}
