package ui

import (
	"os"
	"path/filepath"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"keyport/app"
)

// clientsTab lists every known MCP client for the selected server: its state
// (ok / missing / stale / foreign) and one button — Add, Repair or Remove —
// that previews the change as a diff before writing it, then offers Undo and
// says when the client needs a restart. Rows update on EventClients.
type clientsTab struct {
	u    *UI
	root fyne.CanvasObject

	Intro *subtleText
	rows  map[string]*clientRow // by client ID
	box   *fyne.Container

	name    string
	clients []app.ClientView
	reads   int               // refreshes asked for; an answer to an older one is dropped
	wrote   map[string]string // client ID -> note after a write, until the server changes
	// Preview is the open diff preview, for tests; nil when none is open.
	Preview *clientPreview
}

// clientRow is one client's row.
type clientRow struct {
	Name   *widget.Label
	State  *chip
	Path   *subtleText
	Note   *widget.Label
	Action *widget.Button
	Undo   *widget.Button
	box    fyne.CanvasObject
}

// clientPreview is a diff shown before a write.
type clientPreview struct {
	Diff    *widget.RichText
	Confirm func() // what the Write button does
	dialog  dialog.Dialog
}

func newClientsTab(u *UI) *clientsTab {
	t := &clientsTab{u: u, rows: map[string]*clientRow{}, wrote: map[string]string{}}
	t.Intro = subtle("").wrap()
	t.box = container.NewVBox()
	t.root = container.NewVScroll(container.NewPadded(container.NewVBox(t.Intro, t.box)))
	return t
}

func (t *clientsTab) show(v rowView, changed bool) {
	if changed {
		t.name = v.Name
		t.wrote = map[string]string{}
		t.Intro.SetText("Add " + v.Name + " to your AI clients. Keyport shows each change before " +
			"writing it, keeps the rest of the file as it was, and can undo.")
		t.refresh()
	}
}

// refresh re-reads the clients' states and updates the rows. The read is
// done off the fyne goroutine: in the window process it is a call to the
// tray process, which may be slow to answer.
func (t *clientsTab) refresh() {
	if t.name == "" {
		return
	}
	t.reads++
	read, name := t.reads, t.name
	t.u.bg(func() {
		list := t.u.core.Clients(name)
		t.u.do(func() {
			if read == t.reads && name == t.name {
				t.showList(list)
			}
		})
	})
}

// showList shows list, the clients' states for the selected server.
func (t *clientsTab) showList(list []app.ClientView) {
	t.clients = list
	seen := map[string]bool{}
	var objs []fyne.CanvasObject
	for _, c := range t.clients {
		seen[c.ID] = true
		r := t.rows[c.ID]
		if r == nil {
			r = t.newRow()
			t.rows[c.ID] = r
		}
		t.setRow(r, c)
		objs = append(objs, r.box, widget.NewSeparator())
	}
	for id := range t.rows {
		if !seen[id] {
			delete(t.rows, id)
		}
	}
	if len(objs) == 0 {
		objs = append(objs, subtle("No MCP client is known on this computer."))
	} else {
		objs = objs[:len(objs)-1]
	}
	t.box.Objects = objs
	t.box.Refresh()
}

func (t *clientsTab) newRow() *clientRow {
	r := &clientRow{}
	r.Name = heading("")
	r.State = newChip("", "")
	r.Path = subtleTrunc("").small()
	r.Note = widget.NewLabel("")
	r.Note.Wrapping = fyne.TextWrapWord
	r.Action = widget.NewButton("", nil)
	r.Undo = widget.NewButtonWithIcon("Undo", theme.ContentUndoIcon(), nil)
	r.Undo.Importance = widget.LowImportance
	title := container.NewHBox(r.Name, container.NewCenter(r.State))
	buttons := container.NewHBox(r.Undo, container.NewCenter(r.Action))
	r.box = container.NewBorder(nil, nil, nil, buttons,
		container.New(tightVBox{}, title, r.Path, r.Note))
	return r
}

// clientAction is the one button a client's row offers: its label and
// whether it installs (on) or removes the entry.
func clientAction(c app.ClientView) (label string, on bool) {
	switch c.State {
	case app.ClientOK:
		return "Remove", false
	case app.ClientStale:
		return "Repair", true
	case app.ClientForeign:
		return "Replace", true
	default:
		return "Add", true
	}
}

func clientChip(s app.ClientState) (string, fyne.ThemeColorName) {
	switch s {
	case app.ClientOK:
		return "connected", theme.ColorNameSuccess
	case app.ClientStale:
		return "stale", theme.ColorNameWarning
	case app.ClientForeign:
		return "name taken", theme.ColorNameError
	default:
		return "not added", ""
	}
}

func (t *clientsTab) setRow(r *clientRow, c app.ClientView) {
	r.Name.SetText(c.Name)
	r.State.set(clientChip(c.State))
	r.Path.SetText(tildePath(c.Path))
	label, on := clientAction(c)
	r.Action.SetText(label)
	r.Action.Importance = widget.MediumImportance
	if on {
		r.Action.Importance = widget.HighImportance
	}
	r.Action.Refresh()
	id := c.ID
	r.Action.OnTapped = func() { t.preview(id, on) }
	r.Undo.OnTapped = func() { t.undo(id) }
	showIf(r.Undo, c.CanUndo)

	var notes []string
	imp := widget.MediumImportance
	if w := t.wrote[id]; w != "" {
		// The write worked: green, with what the client needs to notice
		// it (not a warning: nothing went wrong).
		notes = append(notes, w)
		imp = widget.SuccessImportance
		if c.NeedsRestart != "" {
			notes = append(notes, c.NeedsRestart)
		}
	}
	switch c.State {
	case app.ClientStale:
		notes = append(notes, orDefault(c.Detail, "The entry differs from what Keyport would write.")+" Repair rewrites it.")
		imp = widget.WarningImportance
	case app.ClientForeign:
		notes = append(notes, "An entry named "+t.name+" exists that Keyport did not write. Replace overwrites it (a backup is kept).")
		imp = widget.DangerImportance
	}
	if !c.Detected {
		notes = append(notes, c.Name+" does not seem to be installed; Add creates its config file.")
	}
	r.Note.SetText(strings.Join(notes, " "))
	r.Note.Importance = imp
	r.Note.Refresh()
	showIf(r.Note, len(notes) > 0)
}

// preview fetches the change in the background and shows it as a diff with
// Write and Cancel.
func (t *clientsTab) preview(clientID string, on bool) {
	server := t.name
	t.u.bg(func() {
		ch, err := t.u.core.PreviewClient(clientID, server, on)
		t.u.do(func() {
			if server != t.name {
				return
			}
			if err != nil {
				t.u.showError("Preview the change", err)
				return
			}
			t.showPreview(clientID, on, ch)
		})
	})
}

func (t *clientsTab) showPreview(clientID string, on bool, ch app.ClientChange) {
	server := t.name
	p := &clientPreview{Diff: diffText(ch.Diff)}
	// Confirm is what "Write the change" does: close the preview and write.
	// It runs once, however it is reached.
	p.Confirm = func() {
		if t.Preview != p {
			return
		}
		t.Preview = nil
		p.dialog.Hide()
		t.apply(clientID, server, on)
	}
	where := widget.NewLabel("Keyport will change " + tildePath(ch.Path) + ":")
	where.Wrapping = fyne.TextWrapWord
	scroll := container.NewScroll(p.Diff)
	scroll.SetMinSize(fyne.NewSize(560, 280))
	content := container.NewBorder(where, nil, nil, nil, scroll)
	verb := "Write the change"
	if ch.Diff == "" {
		verb = "Write"
		where.SetText(tildePath(ch.Path) + " already has this content; nothing would change.")
	}
	d := dialog.NewCustomConfirm("Preview: "+clientName(t.clients, clientID), verb, "Cancel", content, func(ok bool) {
		if ok {
			p.Confirm()
		} else if t.Preview == p {
			t.Preview = nil // cancelled
		}
	}, t.u.Window)
	p.dialog = d
	t.Preview = p
	t.u.showDialog("Preview: "+clientName(t.clients, clientID), d, d.Confirm)
}

func clientName(list []app.ClientView, id string) string {
	for _, c := range list {
		if c.ID == id {
			return c.Name
		}
	}
	return id
}

// apply writes the change in the background and notes the result.
func (t *clientsTab) apply(clientID, server string, on bool) {
	t.u.bg(func() {
		ch, err := t.u.core.ApplyClient(clientID, server, on)
		t.u.do(func() {
			if err != nil {
				t.u.showError("Change "+clientName(t.clients, clientID), err)
				return
			}
			if server == t.name {
				if ch.Wrote {
					t.wrote[clientID] = "Wrote " + tildePath(ch.Path) + "."
				} else {
					t.wrote[clientID] = "Nothing to change in " + tildePath(ch.Path) + "."
				}
			}
			t.refresh()
		})
	})
}

// undo restores the client's file in the background.
func (t *clientsTab) undo(clientID string) {
	t.u.bg(func() {
		err := t.u.core.UndoClient(clientID)
		t.u.do(func() {
			if err != nil {
				t.u.showError("Undo the change to "+clientName(t.clients, clientID), err)
				return
			}
			t.wrote[clientID] = "Restored the file as it was before Keyport's change."
			t.refresh()
		})
	})
}

// tildePath writes a path in the user's home as ~/…, as people write it.
func tildePath(p string) string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" || home == "/" {
		return p
	}
	if rest, ok := strings.CutPrefix(p, home); ok && (rest == "" || rest[0] == filepath.Separator) {
		return "~" + rest
	}
	return p
}

// diffText renders a unified diff with added lines green and removed red.
func diffText(diff string) *widget.RichText {
	var segs []widget.RichTextSegment
	for _, line := range strings.Split(strings.TrimRight(diff, "\n"), "\n") {
		style := widget.RichTextStyle{TextStyle: fyne.TextStyle{Monospace: true}}
		switch {
		case strings.HasPrefix(line, "+++"), strings.HasPrefix(line, "---"):
			style.ColorName = theme.ColorNamePlaceHolder // (no bold: not every theme has a bold monospace font)
		case strings.HasPrefix(line, "+"):
			style.ColorName = theme.ColorNameSuccess
		case strings.HasPrefix(line, "-"):
			style.ColorName = theme.ColorNameError
		case strings.HasPrefix(line, "@@"):
			style.ColorName = theme.ColorNamePrimary
		}
		segs = append(segs, &widget.TextSegment{Text: line, Style: style})
	}
	return widget.NewRichText(segs...)
}
