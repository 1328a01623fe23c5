package ui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"keyport/app"
)

// Small widgets core fyne lacks: an on/off switch, a status dot with a hover
// tooltip, label chips and a banner. Their colours come from the current
// theme at every refresh, so they follow light and dark.

// Switch is an on/off toggle. Tapping it (or Space while focused) flips On
// and calls OnChanged; SetOn changes it without calling OnChanged.
type Switch struct {
	widget.DisableableWidget
	On        bool
	OnChanged func(on bool) `json:"-"`

	hovered, focused bool
}

// NewSwitch returns a switch that calls changed when the user flips it.
func NewSwitch(changed func(on bool)) *Switch {
	s := &Switch{OnChanged: changed}
	s.ExtendBaseWidget(s)
	return s
}

// SetOn sets the switch without calling OnChanged.
func (s *Switch) SetOn(on bool) {
	if s.On == on {
		return
	}
	s.On = on
	s.Refresh()
}

// Tapped flips the switch.
func (s *Switch) Tapped(*fyne.PointEvent) {
	if s.Disabled() {
		return
	}
	if c := fyne.CurrentApp().Driver().CanvasForObject(s); c != nil {
		c.Focus(s)
	}
	s.flip()
}

func (s *Switch) flip() {
	s.On = !s.On
	s.Refresh()
	if s.OnChanged != nil {
		s.OnChanged(s.On)
	}
}

// Cursor shows a pointer over the switch.
func (s *Switch) Cursor() desktop.Cursor { return desktop.PointerCursor }

// MouseIn highlights the switch.
func (s *Switch) MouseIn(*desktop.MouseEvent) { s.hovered = true; s.Refresh() }

// MouseMoved does nothing.
func (s *Switch) MouseMoved(*desktop.MouseEvent) {}

// MouseOut removes the highlight.
func (s *Switch) MouseOut() { s.hovered = false; s.Refresh() }

// FocusGained shows the focus ring.
func (s *Switch) FocusGained() { s.focused = true; s.Refresh() }

// FocusLost hides the focus ring.
func (s *Switch) FocusLost() { s.focused = false; s.Refresh() }

// TypedRune flips the switch on Space.
func (s *Switch) TypedRune(r rune) {
	if r == ' ' && !s.Disabled() {
		s.flip()
	}
}

// TypedKey ignores keys.
func (s *Switch) TypedKey(*fyne.KeyEvent) {}

// MinSize is a fixed pill.
func (s *Switch) MinSize() fyne.Size { return fyne.NewSize(40, 22) }

// CreateRenderer draws the track, the knob and a focus ring.
func (s *Switch) CreateRenderer() fyne.WidgetRenderer {
	r := &switchRenderer{s: s, ring: canvas.NewRectangle(color.Transparent), track: canvas.NewRectangle(color.Transparent), knob: canvas.NewCircle(color.White)}
	r.Refresh()
	return r
}

type switchRenderer struct {
	s                 *Switch
	ring, track       *canvas.Rectangle
	knob              *canvas.Circle
	trackPos, trackSz fyne.Size
}

func (r *switchRenderer) Layout(size fyne.Size) {
	const w, h = 36, 20
	x, y := (size.Width-w)/2, (size.Height-h)/2
	r.ring.Move(fyne.NewPos(x-2, y-2))
	r.ring.Resize(fyne.NewSize(w+4, h+4))
	r.ring.CornerRadius = (h + 4) / 2
	r.track.Move(fyne.NewPos(x, y))
	r.track.Resize(fyne.NewSize(w, h))
	r.track.CornerRadius = h / 2
	const k = h - 4
	kx := x + 2
	if r.s.On {
		kx = x + w - k - 2
	}
	r.knob.Move(fyne.NewPos(kx, y+2))
	r.knob.Resize(fyne.NewSize(k, k))
}

func (r *switchRenderer) MinSize() fyne.Size { return r.s.MinSize() }

func (r *switchRenderer) Refresh() {
	th := r.s.Theme()
	v := fyne.CurrentApp().Settings().ThemeVariant()
	switch {
	case r.s.Disabled() && r.s.On:
		r.track.FillColor = withAlpha(th.Color(theme.ColorNamePrimary, v), 0x70)
	case r.s.Disabled():
		r.track.FillColor = th.Color(theme.ColorNameDisabledButton, v)
	case r.s.On:
		r.track.FillColor = th.Color(theme.ColorNamePrimary, v)
	default:
		r.track.FillColor = th.Color(theme.ColorNameInputBorder, v)
	}
	r.knob.FillColor = color.White
	if r.s.Disabled() {
		r.knob.FillColor = color.NRGBA{0xf0, 0xf0, 0xf0, 0xff}
	}
	switch {
	case r.s.focused:
		r.ring.FillColor = th.Color(theme.ColorNameFocus, v)
	case r.s.hovered && !r.s.Disabled():
		r.ring.FillColor = th.Color(theme.ColorNameHover, v)
	default:
		r.ring.FillColor = color.Transparent
	}
	r.Layout(r.s.Size())
	r.ring.Refresh()
	r.track.Refresh()
	r.knob.Refresh()
}

func (r *switchRenderer) Objects() []fyne.CanvasObject {
	return []fyne.CanvasObject{r.ring, r.track, r.knob}
}

func (r *switchRenderer) Destroy() {}

func withAlpha(c color.Color, a uint8) color.Color {
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	n.A = a
	return n
}

// stateColor is the theme colour of a proxy state's dot.
func stateColor(st app.ProxyState, th fyne.Theme) color.Color {
	v := fyne.CurrentApp().Settings().ThemeVariant()
	switch st {
	case app.ProxyRunning:
		return th.Color(theme.ColorNameSuccess, v)
	case app.ProxyStarting:
		return th.Color(theme.ColorNamePrimary, v)
	case app.ProxyUnreachable:
		return th.Color(theme.ColorNameWarning, v)
	case app.ProxyError:
		return th.Color(theme.ColorNameError, v)
	default:
		return th.Color(theme.ColorNamePlaceHolder, v)
	}
}

// tooltip shows a small pop-up with a text next to the pointer while it
// hovers its owner. Core fyne has none; this is the minimum.
type tooltip struct {
	owner fyne.CanvasObject
	text  string
	pop   *widget.PopUp
}

func (t *tooltip) show(ev *desktop.MouseEvent) {
	if t.text == "" {
		return
	}
	c := fyne.CurrentApp().Driver().CanvasForObject(t.owner)
	if c == nil {
		return
	}
	t.hide()
	l := widget.NewLabel(t.text)
	l.Wrapping = fyne.TextWrapWord
	content := container.NewPadded(l)
	t.pop = widget.NewPopUp(content, c)
	w := fyne.Min(fyne.MeasureText(t.text, theme.TextSize(), fyne.TextStyle{}).Width+4*theme.Padding(), 360)
	t.pop.Resize(fyne.NewSize(w, content.MinSize().Height))
	sz := t.pop.Content.MinSize()
	t.pop.Resize(fyne.NewSize(w, sz.Height))
	pos := ev.AbsolutePosition.Add(fyne.NewPos(12, 16))
	if max := c.Size().Width - w - 4; pos.X > max {
		pos.X = fyne.Max(max, 0)
	}
	t.pop.ShowAtPosition(pos)
}

func (t *tooltip) hide() {
	if t.pop != nil {
		t.pop.Hide()
		t.pop = nil
	}
}

// tipped wraps an object and shows a tooltip with its text while the
// pointer hovers it (a truncated error's full text).
type tipped struct {
	widget.BaseWidget
	content fyne.CanvasObject
	tip     tooltip
}

func newTipped(content fyne.CanvasObject) *tipped {
	t := &tipped{content: content}
	t.tip.owner = t
	t.ExtendBaseWidget(t)
	return t
}

func (t *tipped) MouseIn(ev *desktop.MouseEvent) { t.tip.show(ev) }
func (t *tipped) MouseMoved(*desktop.MouseEvent) {}
func (t *tipped) MouseOut()                      { t.tip.hide() }

func (t *tipped) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(t.content) }

// statusDot is a coloured dot for a proxy state; hovering it shows the state
// and the reason.
type statusDot struct {
	widget.BaseWidget
	state app.ProxyState
	tip   tooltip
}

func newStatusDot() *statusDot {
	d := &statusDot{state: app.ProxyStopped}
	d.tip.owner = d
	d.ExtendBaseWidget(d)
	return d
}

// set changes the state and hover text.
func (d *statusDot) set(st app.ProxyState, tip string) {
	if d.state == st && d.tip.text == tip {
		return
	}
	d.state, d.tip.text = st, tip
	d.Refresh()
}

func (d *statusDot) MouseIn(ev *desktop.MouseEvent) { d.tip.show(ev) }
func (d *statusDot) MouseMoved(*desktop.MouseEvent) {}
func (d *statusDot) MouseOut()                      { d.tip.hide() }

func (d *statusDot) MinSize() fyne.Size { return fyne.NewSize(20, 20) }

func (d *statusDot) CreateRenderer() fyne.WidgetRenderer {
	halo := canvas.NewCircle(color.Transparent)
	dot := canvas.NewCircle(color.Transparent)
	r := &dotRenderer{d: d, halo: halo, dot: dot}
	r.Refresh()
	return r
}

type dotRenderer struct {
	d         *statusDot
	halo, dot *canvas.Circle
}

func (r *dotRenderer) Layout(size fyne.Size) {
	const s, h = 10, 16
	r.halo.Move(fyne.NewPos((size.Width-h)/2, (size.Height-h)/2))
	r.halo.Resize(fyne.NewSize(h, h))
	r.dot.Move(fyne.NewPos((size.Width-s)/2, (size.Height-s)/2))
	r.dot.Resize(fyne.NewSize(s, s))
}
func (r *dotRenderer) MinSize() fyne.Size { return r.d.MinSize() }
func (r *dotRenderer) Refresh() {
	c := stateColor(r.d.state, r.d.Theme())
	r.dot.FillColor = c
	r.halo.FillColor = color.Transparent
	if r.d.state != app.ProxyStopped {
		r.halo.FillColor = withAlpha(c, 0x40)
	}
	r.halo.Refresh()
	r.dot.Refresh()
}
func (r *dotRenderer) Objects() []fyne.CanvasObject { return []fyne.CanvasObject{r.halo, r.dot} }
func (r *dotRenderer) Destroy()                     {}

// chip is a small rounded tag: a label ("env=prod") or a client state.
type chip struct {
	widget.BaseWidget
	text  string
	color fyne.ThemeColorName // tint; "" for the neutral label colour
}

func newChip(text string, tint fyne.ThemeColorName) *chip {
	c := &chip{text: text, color: tint}
	c.ExtendBaseWidget(c)
	return c
}

func (c *chip) set(text string, tint fyne.ThemeColorName) {
	if c.text == text && c.color == tint {
		return
	}
	c.text, c.color = text, tint
	c.Refresh()
}

func (c *chip) MinSize() fyne.Size {
	ts := fyne.MeasureText(c.text, chipTextSize(), fyne.TextStyle{})
	return fyne.NewSize(ts.Width+12, ts.Height+4)
}

func chipTextSize() float32 { return theme.CaptionTextSize() }

func (c *chip) CreateRenderer() fyne.WidgetRenderer {
	bg := canvas.NewRectangle(color.Transparent)
	txt := canvas.NewText(c.text, color.Black)
	txt.TextSize = chipTextSize()
	r := &chipRenderer{c: c, bg: bg, txt: txt}
	r.Refresh()
	return r
}

type chipRenderer struct {
	c   *chip
	bg  *canvas.Rectangle
	txt *canvas.Text
}

func (r *chipRenderer) Layout(size fyne.Size) {
	min := r.c.MinSize()
	y := (size.Height - min.Height) / 2
	r.bg.Move(fyne.NewPos(0, y))
	r.bg.Resize(fyne.NewSize(min.Width, min.Height))
	r.bg.CornerRadius = min.Height / 2
	r.txt.Move(fyne.NewPos(6, y+2))
}
func (r *chipRenderer) MinSize() fyne.Size { return r.c.MinSize() }
func (r *chipRenderer) Refresh() {
	th := r.c.Theme()
	v := fyne.CurrentApp().Settings().ThemeVariant()
	fg := th.Color(theme.ColorNameForeground, v)
	if r.c.color == "" {
		r.bg.FillColor = withAlpha(fg, 0x1c)
		r.txt.Color = fg
	} else {
		tint := th.Color(r.c.color, v)
		r.bg.FillColor = withAlpha(tint, 0x30)
		r.txt.Color = fg
	}
	r.txt.Text = r.c.text
	r.txt.TextSize = chipTextSize()
	r.Layout(r.c.Size())
	r.bg.Refresh()
	r.txt.Refresh()
}
func (r *chipRenderer) Objects() []fyne.CanvasObject { return []fyne.CanvasObject{r.bg, r.txt} }
func (r *chipRenderer) Destroy()                     {}

// chipsLayout lays chips out in one row and hides those that do not fit,
// so a server with many labels never pushes into the switch column.
type chipsLayout struct{}

func (chipsLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	x := float32(0)
	gap := theme.Padding()
	for _, o := range objs {
		m := o.MinSize()
		if x+m.Width > size.Width {
			if o.Visible() {
				o.Hide()
			}
			continue
		}
		if !o.Visible() {
			o.Show()
		}
		o.Move(fyne.NewPos(x, (size.Height-m.Height)/2))
		o.Resize(m)
		x += m.Width + gap
	}
}

func (chipsLayout) MinSize(objs []fyne.CanvasObject) fyne.Size {
	h := float32(0)
	for _, o := range objs {
		h = fyne.Max(h, o.MinSize().Height)
	}
	return fyne.NewSize(0, h)
}

// banner is a coloured strip across the top of the window for a problem the
// user must fix (an invalid servers.yaml).
type banner struct {
	box  *fyne.Container
	bg   *canvas.Rectangle
	text *widget.Label
}

func newBanner() *banner {
	b := &banner{bg: canvas.NewRectangle(color.Transparent), text: widget.NewLabel("")}
	b.bg.CornerRadius = theme.InputRadiusSize()
	b.text.Wrapping = fyne.TextWrapWord
	icon := widget.NewIcon(theme.NewErrorThemedResource(theme.ErrorIcon()))
	b.box = container.NewPadded(container.NewStack(b.bg,
		container.NewBorder(nil, nil, container.NewPadded(icon), nil, b.text)))
	b.box.Hide()
	return b
}

// set shows msg, or hides the banner when msg is "".
func (b *banner) set(msg string) {
	if msg == "" {
		b.box.Hide()
		return
	}
	b.bg.FillColor = withAlpha(theme.Color(theme.ColorNameError), 0x30)
	b.bg.Refresh()
	b.text.SetText(msg)
	b.box.Show()
}

// heading is a bold label.
func heading(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.TextStyle.Bold = true
	return l
}

// subtleText is secondary text: the theme's placeholder grey (readable in
// light and dark, unlike the disabled colour), truncated with an ellipsis.
type subtleText struct {
	*widget.RichText
	seg *widget.TextSegment
}

func subtle(text string) *subtleText {
	seg := &widget.TextSegment{Text: text, Style: widget.RichTextStyle{ColorName: theme.ColorNamePlaceHolder}}
	return &subtleText{RichText: widget.NewRichText(seg), seg: seg}
}

// subtleTrunc is subtle text cut with an ellipsis when space is short.
func subtleTrunc(text string) *subtleText {
	s := subtle(text)
	s.Truncation = fyne.TextTruncateEllipsis
	return s
}

// SetText changes the text.
func (s *subtleText) SetText(text string) {
	if s.seg.Text == text {
		return
	}
	s.seg.Text = text
	s.Refresh()
}

// Text returns the text.
func (s *subtleText) Text() string { return s.seg.Text }

// wrap makes the text wrap at word boundaries instead of truncating.
func (s *subtleText) wrap() *subtleText {
	s.Truncation = fyne.TextTruncateOff
	s.Wrapping = fyne.TextWrapWord
	return s
}

// small makes the text caption-sized (paths). Not monospace: fyne clips
// underscores of the monospace font at caption size.
func (s *subtleText) small() *subtleText {
	s.seg.Style.SizeName = theme.SizeNameCaptionText
	return s
}
