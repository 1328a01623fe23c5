package ui

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"keyport/app"
)

// The Profiles view: the profiles beside the servers, each toggled like a
// server (its endpoint), and an editor that picks servers, ticks tools from
// the live tool list (only those the server's policy allows), renames them
// or replaces their descriptions, and shows what the selection costs the
// model: the size of the tools/list the profile will serve, in bytes and
// about as many tokens.

// ProfilesView is the open Profiles window's content (UI.ProfilesView).
type ProfilesView struct {
	u     *UI
	d     *dialog.CustomDialog
	box   *fyne.Container
	New   *widget.Button
	Rows  map[string]*ProfileRow
	Empty *widget.Label
}

// ProfileRow is one profile in the view.
type ProfileRow struct {
	Switch *Switch
	Name   *widget.Label
	State  *widget.Label
	URL    *widget.Label
	Edit   *widget.Button
	Remove *widget.Button
}

// showProfiles opens the Profiles view.
func (u *UI) showProfiles() {
	v := &ProfilesView{u: u, Rows: map[string]*ProfileRow{}}
	v.New = widget.NewButtonWithIcon("New profile", theme.ContentAddIcon(), func() { u.showProfileEditor(nil) })
	v.New.Importance = widget.HighImportance
	v.Empty = widget.NewLabel("No profiles yet. A profile serves a chosen set of servers and tools to an AI client on one local endpoint.")
	v.Empty.Wrapping = fyne.TextWrapWord
	v.box = container.NewVBox()
	body := container.NewBorder(nil, container.NewHBox(v.New), nil, nil, container.NewVScroll(v.box))
	v.d = dialog.NewCustom("Profiles", "Close", body, u.Window)
	v.d.Resize(fyne.NewSize(760, 460))
	u.ProfilesView = v
	v.refresh()
	od := u.showDialog("Profiles", v.d, nil) // Escape closes it
	v.d.SetOnClosed(func() { u.dropDialog(od); u.ProfilesView = nil })
}

// refresh rebuilds the rows from the core's profiles.
func (v *ProfilesView) refresh() {
	profiles := v.u.core.Profiles()
	v.box.RemoveAll()
	v.Rows = map[string]*ProfileRow{}
	if len(profiles) == 0 {
		v.box.Add(v.Empty)
	}
	for _, p := range profiles {
		r := v.row(p)
		v.Rows[p.Name] = r
		servers := make([]string, 0, len(p.Servers))
		for _, s := range p.Servers {
			label := s.Server
			if len(s.Tools) > 0 {
				label += fmt.Sprintf(" (%d tools)", len(s.Tools))
			}
			if n := len(s.Overrides); n > 0 {
				label += fmt.Sprintf(", %d override%s", n, map[bool]string{true: "", false: "s"}[n == 1])
			}
			servers = append(servers, label)
		}
		detail := widget.NewLabel(strings.Join(servers, " · "))
		detail.Wrapping = fyne.TextWrapWord
		head := container.NewBorder(nil, nil, container.NewHBox(r.Switch, r.Name, r.State), container.NewHBox(r.Edit, r.Remove), r.URL)
		v.box.Add(container.NewVBox(head, detail, widget.NewSeparator()))
	}
	v.box.Refresh()
}

func (v *ProfilesView) row(p app.ProfileView) *ProfileRow {
	u := v.u
	name := p.Name
	r := &ProfileRow{Name: widget.NewLabelWithStyle(name, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})}
	r.Switch = NewSwitch(func(on bool) {
		u.bg(func() {
			ctx, cancel := context.WithTimeout(context.Background(), toggleTimeout)
			defer cancel()
			err := u.core.SetProfileEnabled(ctx, name, on)
			u.do(func() {
				if err != nil {
					u.showError("Turn profile "+name+" on", err)
				}
				if u.ProfilesView != nil {
					u.ProfilesView.refresh()
				}
			})
		})
	})
	r.Switch.SetOn(p.Enabled)
	state := p.State.Label()
	if p.State == app.ProxyRunning {
		down := 0
		for _, m := range p.Members {
			if !m.Up && !m.Idle {
				down++
			}
		}
		if down > 0 {
			state += fmt.Sprintf(" (%d server%s unavailable)", down, map[bool]string{true: "", false: "s"}[down == 1])
		}
	}
	if p.LastError != "" {
		state += ": " + p.LastError
	}
	r.State = widget.NewLabel(state)
	r.URL = widget.NewLabel(p.LocalURL)
	r.URL.Truncation = fyne.TextTruncateEllipsis
	r.Edit = widget.NewButtonWithIcon("", theme.DocumentCreateIcon(), func() {
		cur := p.NewProfile
		u.showProfileEditor(&cur)
	})
	r.Remove = widget.NewButtonWithIcon("", theme.DeleteIcon(), func() {
		u.confirm("Remove profile "+name+"?",
			"Its endpoint stops and its entries are removed from your clients' configs. The servers stay.", "Remove",
			func(ok bool) {
				if !ok {
					return
				}
				u.bg(func() {
					err := u.core.RemoveProfile(name)
					u.do(func() {
						if err != nil {
							u.showError("Remove profile "+name, err)
						}
						if u.ProfilesView != nil {
							u.ProfilesView.refresh()
						}
					})
				})
			})
	})
	return r
}

// ProfileEditor is the open profile editor (UI.ProfileEditor).
type ProfileEditor struct {
	u           *UI
	f           *formDialog
	create      bool
	Name        *dialogEntry
	Description *dialogEntry
	Always      *dialogCheck
	Cost        *widget.Label
	Servers     map[string]*ProfileServerEditor
	order       []string
	scroll      *container.Scroll // the servers and their tools
	shown       bool              // scrolled to the profile's first server
}

// ProfileServerEditor is one server in the editor.
type ProfileServerEditor struct {
	box     *fyne.Container // its check and its tools, in the editor's list
	Include *dialogCheck
	tools   *fyne.Container
	status  *widget.Label
	Tools   map[string]*ProfileToolEditor
	names   []string // in the server's order
	loaded  bool
}

// ProfileToolEditor is one tool: ticked or not, with its overrides.
type ProfileToolEditor struct {
	Check       *dialogCheck
	Rename      *dialogEntry
	Description *dialogEntry
	bytes       int
}

// showProfileEditor opens the editor for cur (nil: a new profile).
func (u *UI) showProfileEditor(cur *app.NewProfile) {
	e := &ProfileEditor{u: u, create: cur == nil, Servers: map[string]*ProfileServerEditor{}}
	e.Name = u.newDialogEntry("coding")
	e.Description = u.newDialogEntry("what this profile is for")
	e.Always = u.newDialogCheck("Prefix every tool with its server's name (not only colliding ones)")
	e.Cost = widget.NewLabel("")
	list := container.NewVBox()
	e.scroll = container.NewVScroll(list)
	chosen := map[string]app.ProfileServer{}
	if cur != nil {
		e.Name.SetText(cur.Name)
		e.Name.Disable()
		e.Description.SetText(cur.Description)
		e.Always.SetChecked(cur.PrefixAlways)
		for _, s := range cur.Servers {
			chosen[s.Server] = s
		}
	}
	for _, s := range u.servers {
		if s.Demo {
			continue
		}
		name := s.Name
		se := &ProfileServerEditor{tools: container.NewVBox(), status: widget.NewLabel(""), Tools: map[string]*ProfileToolEditor{}}
		se.status.Hide()
		se.Include = u.newDialogCheck(name) // Escape and Enter still reach the dialog once it has the focus
		se.Include.OnChanged = func(on bool) {
			if on {
				se.tools.Show()
				e.load(name, se, chosen[name])
			} else {
				se.tools.Hide()
			}
			e.updateCost()
			e.f.fit()
		}
		se.tools.Hide()
		e.Servers[name] = se
		e.order = append(e.order, name)
		se.box = container.NewVBox(se.Include, container.NewPadded(container.NewVBox(se.status, se.tools)))
		list.Add(se.box)
	}
	form := widget.NewForm(widget.NewFormItem("Name", e.Name), widget.NewFormItem("Description", e.Description))
	body := container.NewBorder(container.NewVBox(form, e.Always, widget.NewLabel("Servers and tools (only tools their policies allow):")),
		e.Cost, nil, nil, container.NewGridWrap(fyne.NewSize(700, 300), e.scroll))
	title, submit := "New profile", "Add profile"
	if cur != nil {
		title, submit = "Profile "+cur.Name, "Save"
	}
	e.f = u.newFormDialog(title, submit, body, 740)
	e.f.Submit.OnTapped = e.submit
	u.ProfileEditor = e
	for _, name := range e.order {
		if _, ok := chosen[name]; ok {
			e.Servers[name].Include.SetChecked(true) // loads its tools
		}
	}
	e.updateCost()
	e.f.show(func() { u.ProfileEditor = nil })
}

// load fetches a server's tools (once) and shows them, ticked as ps says
// (every tool when ps lists none).
func (e *ProfileEditor) load(server string, se *ProfileServerEditor, ps app.ProfileServer) {
	if se.loaded {
		return
	}
	se.loaded = true
	se.status.SetText("Listing " + server + "'s tools…")
	se.status.Show()
	u := e.u
	u.bg(func() {
		ctx, cancel := context.WithTimeout(context.Background(), toggleTimeout)
		defer cancel()
		tools, err := u.core.ProfileTools(ctx, server)
		u.do(func() {
			if err != nil {
				se.status.SetText("Could not list the tools (" + err.Error() + "); the profile will serve every tool the policy allows.")
				return
			}
			se.status.Hide()
			for _, t := range tools {
				te := &ProfileToolEditor{bytes: t.Bytes, Rename: u.newDialogEntry("rename"), Description: u.newDialogEntry("")}
				te.Rename.SetPlaceHolder("rename")
				te.Description.SetPlaceHolder("new description for the model")
				if o, ok := ps.Overrides[t.Name]; ok {
					te.Rename.SetText(o.Rename)
					te.Description.SetText(o.Description)
				}
				te.Check = u.newDialogCheck(t.Name)
				te.Check.OnChanged = func(bool) { e.updateCost() }
				te.Check.SetChecked(len(ps.Tools) == 0 || slices.Contains(ps.Tools, t.Name))
				se.Tools[t.Name] = te
				se.names = append(se.names, t.Name)
				se.tools.Add(container.NewGridWithColumns(3, te.Check, te.Rename, te.Description))
			}
			e.updateCost()
			e.f.fit()
			e.showFirst(se)
		})
	})
}

// showFirst scrolls the list, once, to the first server of the profile
// whose tools have loaded, so that editing a profile opens on its own
// servers and tools rather than on the servers above them.
func (e *ProfileEditor) showFirst(se *ProfileServerEditor) {
	if e.shown || e.create {
		return
	}
	e.shown = true
	e.scroll.Refresh() // lays the list out with the tools just added
	e.scroll.ScrollToOffset(fyne.NewPos(0, se.box.Position().Y))
}

// updateCost shows the size of the tools/list the selection serves.
func (e *ProfileEditor) updateCost() {
	bytes, tools := 0, 0
	for _, name := range e.order {
		se := e.Servers[name]
		if !se.Include.Checked {
			continue
		}
		for _, t := range se.names {
			if te := se.Tools[t]; te.Check.Checked {
				bytes += te.bytes + len(te.Description.Text)
				tools++
			}
		}
	}
	e.Cost.SetText(fmt.Sprintf("tools/list: %d tools, %s ≈ %d tokens in every request's context", tools, humanBytes(int64(bytes)), app.ApproxTokens(bytes)))
}

// profile is what the editor says.
func (e *ProfileEditor) profile() app.NewProfile {
	p := app.NewProfile{Name: strings.TrimSpace(e.Name.Text), Description: strings.TrimSpace(e.Description.Text), PrefixAlways: e.Always.Checked}
	for _, name := range e.order {
		se := e.Servers[name]
		if !se.Include.Checked {
			continue
		}
		ps := app.ProfileServer{Server: name}
		all := true
		for _, t := range se.names {
			te := se.Tools[t]
			if !te.Check.Checked {
				all = false
				continue
			}
			ps.Tools = append(ps.Tools, t)
			if r, d := strings.TrimSpace(te.Rename.Text), strings.TrimSpace(te.Description.Text); r != "" || d != "" {
				if ps.Overrides == nil {
					ps.Overrides = map[string]app.ToolOverride{}
				}
				ps.Overrides[t] = app.ToolOverride{Rename: r, Description: d}
			}
		}
		if all {
			ps.Tools = nil // every tool, also the ones the server adds later
		}
		p.Servers = append(p.Servers, ps)
	}
	return p
}

func (e *ProfileEditor) submit() {
	p := e.profile()
	if len(p.Servers) == 0 {
		e.f.fail(fmt.Errorf("choose at least one server"))
		return
	}
	e.f.busy()
	u := e.u
	u.bg(func() {
		err := u.core.SetProfile(p, e.create)
		u.do(func() {
			if err != nil {
				e.f.fail(err)
				return
			}
			e.f.d.Hide()
			if u.ProfilesView != nil {
				u.ProfilesView.refresh()
			}
		})
	})
}
