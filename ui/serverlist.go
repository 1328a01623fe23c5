package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"keyport/app"
)

// serverList is the server list: a widget.List that also toggles the
// selected server's proxy on Enter.
type serverList struct {
	widget.List
	onEnter func()
}

func newServerList(length func() int, create func() fyne.CanvasObject, update func(widget.ListItemID, fyne.CanvasObject), onEnter func()) *serverList {
	l := &serverList{onEnter: onEnter}
	l.Length, l.CreateItem, l.UpdateItem = length, create, update
	l.ExtendBaseWidget(l)
	return l
}

// TypedKey toggles on Enter and otherwise navigates like a list.
func (l *serverList) TypedKey(ev *fyne.KeyEvent) {
	if ev.Name == fyne.KeyReturn || ev.Name == fyne.KeyEnter {
		l.onEnter()
		return
	}
	l.List.TypedKey(ev)
}

// rowView is what a row shows: the server plus the UI's own transient state
// (a toggle in flight, the last toggle error).
type rowView struct {
	app.ServerView
	pending   bool   // a SetProxyEnabled call is in flight
	want      bool   // what it asked for
	toggleErr string // the last toggle's error, shown inline
}

// displayState is the state the row shows: "starting" while a turn-on is in
// flight, whatever the core says otherwise.
func (r rowView) displayState() app.ProxyState {
	if r.pending && r.want {
		return app.ProxyStarting
	}
	return r.State
}

// problem is the inline error text of a row, or "", and how serious it is:
// errors are red, things the user still has to do (sign in, set a
// credential) or an unreachable upstream are amber.
func (r rowView) problem() (string, widget.Importance) {
	switch {
	case r.toggleErr != "":
		return r.toggleErr, widget.DangerImportance
	case r.pending:
		return "", 0
	case r.State == app.ProxyError:
		return orDefault(r.LastError, r.State.Label()), widget.DangerImportance
	case r.State == app.ProxyUnreachable:
		return orDefault(r.LastError, r.State.Label()), widget.WarningImportance
	case r.Credential.SignInNeeded:
		return "Sign in needed: select the server and choose Sign in.", widget.WarningImportance
	case r.Credential.Needed && !r.Credential.Set && !r.Credential.CreatedOnStart:
		return "No credential in the keychain yet: select the server and choose Set.", widget.WarningImportance
	}
	return "", 0
}

// serverRow is one row of the list. It is created once per visible slot and
// updated in place as the list scrolls or the status changes.
type serverRow struct {
	widget.BaseWidget
	dot     *statusDot
	name    *widget.Label
	chips   *fyne.Container
	desc    *subtleText
	line1   *fyne.Container
	url     *widget.Label
	copy    *widget.Button
	prob    *widget.Label
	probTip *tipped
	sw      *Switch
	urlBox  *fyne.Container

	view     rowView
	onToggle func(name string, on bool)
	onCopy   func(url string, b *widget.Button)
}

func newServerRow(onToggle func(string, bool), onCopy func(string, *widget.Button)) *serverRow {
	r := &serverRow{onToggle: onToggle, onCopy: onCopy}
	r.dot = newStatusDot()
	r.name = widget.NewLabel("")
	r.name.TextStyle.Bold = true
	r.name.Truncation = fyne.TextTruncateEllipsis
	r.chips = container.New(chipsLayout{})
	r.desc = subtleTrunc("")
	r.url = widget.NewLabel("")
	r.url.TextStyle.Monospace = true
	r.url.Truncation = fyne.TextTruncateEllipsis
	r.copy = widget.NewButtonWithIcon("", theme.ContentCopyIcon(), func() {
		if r.onCopy != nil && r.view.LocalURL != "" {
			r.onCopy(r.view.LocalURL, r.copy)
		}
	})
	r.copy.Importance = widget.LowImportance
	r.prob = widget.NewLabel("")
	r.prob.Importance = widget.DangerImportance
	r.prob.Truncation = fyne.TextTruncateEllipsis
	r.probTip = newTipped(r.prob)
	r.sw = NewSwitch(func(on bool) {
		if r.onToggle != nil {
			r.onToggle(r.view.Name, on)
		}
	})
	r.urlBox = container.NewBorder(nil, nil, nil, r.copy, r.url)
	r.line1 = container.New(&nameLineLayout{}, r.name, r.chips)
	r.ExtendBaseWidget(r)
	return r
}

// set shows v in the row.
func (r *serverRow) set(v rowView) {
	r.view = v
	st := v.displayState()
	tip := statusTip(v.ServerView)
	if v.pending && v.want {
		tip = "Starting the proxy…"
	} else if v.pending {
		tip = "Stopping the proxy…"
	}
	r.dot.set(st, tip)
	r.name.SetText(v.Name)
	labels := sortedLabels(v.Labels)
	for len(r.chips.Objects) < len(labels) {
		r.chips.Add(newChip("", ""))
	}
	for i, o := range r.chips.Objects {
		c := o.(*chip)
		if i < len(labels) {
			c.set(labels[i], "")
			c.Show()
		} else {
			c.Hide()
		}
	}
	r.chips.Objects = r.chips.Objects[:len(labels)]
	r.line1.Refresh() // the name's width changed: lay the line out again
	r.desc.SetText(orDefault(v.Description, "No description"))
	if p, imp := v.problem(); p != "" {
		r.prob.Importance = imp
		r.prob.SetText(p)
		r.probTip.tip.text = p
		r.prob.Show()
		r.probTip.Show()
		r.urlBox.Hide()
	} else {
		r.prob.Hide()
		r.probTip.Hide()
		r.urlBox.Show()
		switch {
		case v.LocalURL == "":
			r.url.TextStyle.Monospace = false
			r.url.SetText("Turn on to get a local URL")
			r.url.Importance = widget.MediumImportance
			r.copy.Hide()
		case st == app.ProxyRunning:
			r.url.TextStyle.Monospace = true
			r.url.SetText(v.LocalURL)
			r.url.Importance = widget.MediumImportance
			r.copy.Show()
		default:
			r.url.TextStyle.Monospace = true
			r.url.SetText(v.LocalURL)
			r.url.Importance = widget.MediumImportance
			r.copy.Show()
		}
		r.url.Refresh()
	}
	r.sw.SetOn(v.pending && v.want || !v.pending && v.Enabled)
	if v.pending {
		r.sw.Disable()
	} else {
		r.sw.Enable()
	}
}

func (r *serverRow) CreateRenderer() fyne.WidgetRenderer {
	text := container.New(tightVBox{}, r.line1, r.desc, container.NewStack(r.urlBox, r.probTip))
	left := container.NewCenter(r.dot)
	right := container.NewCenter(r.sw)
	return widget.NewSimpleRenderer(container.NewBorder(nil, nil, left, right, text))
}

// nameLineLayout puts the name at its natural width (or less when space is
// short) and the chips in the remaining space.
type nameLineLayout struct{}

func (*nameLineLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	name, chips := objs[0], objs[1]
	nw := name.(*widget.Label)
	natural := fyne.MeasureText(nw.Text, theme.TextSize(), nw.TextStyle).Width + 2*theme.InnerPadding() + 2
	w := fyne.Min(natural, size.Width)
	name.Move(fyne.NewPos(0, 0))
	name.Resize(fyne.NewSize(w, size.Height))
	chips.Move(fyne.NewPos(w, 0))
	chips.Resize(fyne.NewSize(fyne.Max(size.Width-w, 0), size.Height))
}

func (*nameLineLayout) MinSize(objs []fyne.CanvasObject) fyne.Size {
	return fyne.NewSize(0, fyne.Max(objs[0].MinSize().Height, objs[1].MinSize().Height))
}

// tightVBox stacks rows without padding between them, so a three-line row
// stays compact; each label carries its own inner padding.
type tightVBox struct{}

func (tightVBox) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	y := float32(0)
	n := 0
	for _, o := range objs {
		if o.Visible() {
			n++
		}
	}
	overlap := theme.InnerPadding() / 2
	for _, o := range objs {
		if !o.Visible() {
			continue
		}
		h := o.MinSize().Height
		o.Move(fyne.NewPos(0, y))
		o.Resize(fyne.NewSize(size.Width, h))
		y += h - overlap
	}
}

func (tightVBox) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var s fyne.Size
	overlap := theme.InnerPadding() / 2
	for _, o := range objs {
		if !o.Visible() {
			continue
		}
		m := o.MinSize()
		s.Width = fyne.Max(s.Width, m.Width)
		s.Height += m.Height - overlap
	}
	return s.AddWidthHeight(0, overlap)
}

var _ fyne.Layout = tightVBox{}
