package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"
)

// Escape and Enter in dialogs. fyne leaves both to the application: a key
// goes to the focused widget (an entry swallows Escape) or, with nothing
// focused, to the window's key handler. So every dialog of the window is
// opened through showDialog, which records what Escape (cancel) and Enter
// (submit) do in it, and the widgets that take the focus inside dialogs
// are the small wrappers below, which hand those two keys to the open
// dialog. While a dialog is open, the window's own keys (Enter toggles the
// selected server's proxy) do nothing: the dialog has the keyboard.

// openDialog is a dialog on screen and what its keys do.
type openDialog struct {
	title   string
	d       dialog.Dialog
	submit  func()                       // Enter; nil: Enter closes the dialog as Escape does
	buttons map[string]fyne.CanvasObject // by label, for Layout; may be nil
}

// showDialog shows d, titled title, and makes Escape dismiss it and Enter
// run submit (nil: close it, for dialogs with a single button).
func (u *UI) showDialog(title string, d dialog.Dialog, submit func()) *openDialog {
	od := &openDialog{title: title, d: d, submit: submit}
	u.dialogs = append(u.dialogs, od)
	d.SetOnClosed(func() { u.dropDialog(od) })
	d.Show()
	return od
}

// dropDialog forgets a closed dialog.
func (u *UI) dropDialog(od *openDialog) {
	for i, o := range u.dialogs {
		if o == od {
			u.dialogs = append(u.dialogs[:i], u.dialogs[i+1:]...)
			return
		}
	}
}

// OpenDialogs are the titles of the dialogs on screen, the top one last.
func (u *UI) OpenDialogs() []string {
	out := make([]string, len(u.dialogs))
	for i, o := range u.dialogs {
		out[i] = o.title
	}
	return out
}

// dialogKey handles a key typed while a dialog may be open: Escape
// dismisses the top dialog, Enter submits it. It reports whether a dialog
// is open, in which case the key belongs to it and nothing else.
func (u *UI) dialogKey(key fyne.KeyName) bool {
	if len(u.dialogs) == 0 {
		return false
	}
	top := u.dialogs[len(u.dialogs)-1]
	switch key {
	case fyne.KeyEscape:
		top.d.Dismiss()
	case fyne.KeyReturn, fyne.KeyEnter:
		if top.submit != nil {
			top.submit()
		} else {
			top.d.Dismiss()
		}
	}
	return true
}

// isDialogKey reports whether a key is one dialogKey handles.
func isDialogKey(key fyne.KeyName) bool {
	return key == fyne.KeyEscape || key == fyne.KeyReturn || key == fyne.KeyEnter
}

// dialogEntry is an entry inside a dialog: Escape closes the dialog, and
// Enter submits it unless the entry has an OnSubmitted of its own (the
// registry search box searches).
type dialogEntry struct {
	widget.Entry
	u *UI
}

func (u *UI) newDialogEntry(placeholder string) *dialogEntry {
	e := &dialogEntry{u: u}
	e.Wrapping = fyne.TextWrap(fyne.TextTruncateClip)
	e.PlaceHolder = placeholder
	e.ExtendBaseWidget(e)
	return e
}

// newDialogPassword is a masked dialogEntry with fyne's reveal button.
func (u *UI) newDialogPassword(placeholder string) *dialogEntry {
	e := u.newDialogEntry(placeholder)
	e.Password = true // the entry adds its reveal button when rendered
	return e
}

// TypedKey hands Escape, and Enter without an OnSubmitted, to the dialog.
func (e *dialogEntry) TypedKey(ev *fyne.KeyEvent) {
	if ev.Name == fyne.KeyEscape || (isDialogKey(ev.Name) && e.OnSubmitted == nil) {
		if e.u.dialogKey(ev.Name) {
			return
		}
	}
	e.Entry.TypedKey(ev)
}

// dialogSelect is a drop-down inside a dialog: Escape and Enter go to the
// dialog (its open menu handles Escape itself).
type dialogSelect struct {
	widget.Select
	u *UI
}

func (u *UI) newDialogSelect(options []string, changed func(string)) *dialogSelect {
	s := &dialogSelect{u: u}
	s.Options, s.OnChanged = options, changed
	s.ExtendBaseWidget(s)
	return s
}

// TypedKey hands Escape and Enter to the dialog.
func (s *dialogSelect) TypedKey(ev *fyne.KeyEvent) {
	if isDialogKey(ev.Name) && s.u.dialogKey(ev.Name) {
		return
	}
	s.Select.TypedKey(ev)
}

// dialogButton is a button inside a dialog: Enter presses it (as Space
// does) and Escape closes the dialog.
type dialogButton struct {
	widget.Button
	u *UI
}

func (u *UI) newDialogButton(label string, icon fyne.Resource, tapped func()) *dialogButton {
	b := &dialogButton{u: u}
	b.Text, b.Icon, b.OnTapped = label, icon, tapped
	b.ExtendBaseWidget(b)
	return b
}

// TypedKey presses the button on Enter and closes the dialog on Escape.
func (b *dialogButton) TypedKey(ev *fyne.KeyEvent) {
	switch ev.Name {
	case fyne.KeyReturn, fyne.KeyEnter:
		b.Button.TypedKey(&fyne.KeyEvent{Name: fyne.KeySpace})
	case fyne.KeyEscape:
		b.u.dialogKey(ev.Name)
	default:
		b.Button.TypedKey(ev)
	}
}

// dialogCheck is a check box inside a dialog: Escape and Enter go to the
// dialog.
type dialogCheck struct {
	widget.Check
	u *UI
}

func (u *UI) newDialogCheck(label string) *dialogCheck {
	c := &dialogCheck{u: u}
	c.Text = label
	c.ExtendBaseWidget(c)
	return c
}

// TypedKey hands Escape and Enter to the dialog.
func (c *dialogCheck) TypedKey(ev *fyne.KeyEvent) {
	if isDialogKey(ev.Name) && c.u.dialogKey(ev.Name) {
		return
	}
	c.Check.TypedKey(ev)
}

// dialogList is a list inside a dialog: Escape and Enter go to the dialog
// (Enter after choosing a registry result imports it).
type dialogList struct {
	widget.List
	u *UI
}

func (u *UI) newDialogList(length func() int, create func() fyne.CanvasObject, update func(widget.ListItemID, fyne.CanvasObject)) *dialogList {
	l := &dialogList{u: u}
	l.Length, l.CreateItem, l.UpdateItem = length, create, update
	l.ExtendBaseWidget(l)
	return l
}

// TypedKey hands Escape and Enter to the dialog.
func (l *dialogList) TypedKey(ev *fyne.KeyEvent) {
	if isDialogKey(ev.Name) && l.u.dialogKey(ev.Name) {
		return
	}
	l.List.TypedKey(ev)
}
