package ui

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"keyport/app"
)

// reviewPanel is the tool pinning review at the top of the Tools tab: the
// tools whose definitions Keyport holds (new, or changed since the user
// approved them), one at a time, with a side-by-side diff of description
// and schema (approved → now), the suspicious text found, and Approve /
// Keep blocked for the tool or for all. It shows only while something is
// held.
type reviewPanel struct {
	t    *toolsTab
	root fyne.CanvasObject

	Header     *widget.Label
	Held       *widget.Select // the held tool shown
	What       *widget.Label  // new or changed, hashes, blocked
	Flags      *widget.Label
	Old, New   *widget.RichText // the diff's two sides
	Approve    *widget.Button
	Block      *widget.Button
	ApproveAll *widget.Button
	BlockAll   *widget.Button

	review  app.ToolReview
	current string // the tool shown
	seq     int
	busy    bool
}

func newReviewPanel(t *toolsTab) *reviewPanel {
	r := &reviewPanel{t: t}
	r.Header = widget.NewLabel("")
	r.Header.Wrapping = fyne.TextWrapWord
	r.Header.Importance = widget.WarningImportance
	r.Header.TextStyle.Bold = true
	r.Held = widget.NewSelect(nil, func(s string) { r.showTool(toolOfOption(s)) })
	r.What = widget.NewLabel("")
	r.What.Wrapping = fyne.TextWrapWord
	r.Flags = widget.NewLabel("")
	r.Flags.Wrapping = fyne.TextWrapWord
	r.Flags.Importance = widget.DangerImportance
	r.Old, r.New = widget.NewRichText(), widget.NewRichText()
	r.Old.Wrapping, r.New.Wrapping = fyne.TextWrapWord, fyne.TextWrapWord
	r.Approve = widget.NewButtonWithIcon("Approve", theme.ConfirmIcon(), func() { r.decide(true, false) })
	r.Approve.Importance = widget.HighImportance
	r.Block = widget.NewButtonWithIcon("Keep blocked", theme.CancelIcon(), func() { r.decide(false, false) })
	r.ApproveAll = widget.NewButton("Approve all", func() { r.decide(true, true) })
	r.BlockAll = widget.NewButton("Keep all blocked", func() { r.decide(false, true) })

	oldHead, newHead := widget.NewLabel("Approved"), widget.NewLabel("Now")
	oldHead.TextStyle.Bold, newHead.TextStyle.Bold = true, true
	diff := container.NewGridWithColumns(2,
		container.NewBorder(oldHead, nil, nil, nil, r.Old),
		container.NewBorder(newHead, nil, nil, nil, r.New))
	// The header, the selector, the flags and the diff scroll together, so
	// the panel (and the window) stays short enough for a small screen;
	// the decision buttons stay in view below.
	body := container.NewVScroll(container.NewVBox(r.Header,
		container.NewBorder(nil, nil, widget.NewLabel("Tool"), nil, r.Held),
		r.What, r.Flags, diff))
	body.SetMinSize(fyne.NewSize(0, 130))
	buttons := container.NewHBox(r.ApproveAll, r.BlockAll, layout.NewSpacer(), r.Block, r.Approve)
	r.root = container.NewBorder(nil, container.NewVBox(buttons, widget.NewSeparator()), nil, nil, body)
	r.root.Hide()
	return r
}

// option is how a held tool reads in the selector.
func option(c app.ToolChange) string {
	s := c.Tool + " (" + c.Kind
	if c.Blocked {
		s += ", blocked"
	}
	if c.DeniedByPolicy {
		s += ", denied by policy"
	}
	return s + ")"
}

func toolOfOption(s string) string {
	name, _, _ := strings.Cut(s, " (")
	return name
}

// load asks the core for the server's review in the background.
func (r *reviewPanel) load() {
	name := r.t.name
	if name == "" {
		return
	}
	r.seq++
	seq := r.seq
	r.t.u.bg(func() {
		rev, err := r.t.u.core.ToolReview(name)
		r.t.u.do(func() {
			if seq != r.seq || name != r.t.name {
				return
			}
			if err != nil {
				r.review = app.ToolReview{}
				r.Header.SetText("Could not read the tools held for review: " + err.Error())
				r.root.Show()
				return
			}
			r.set(rev)
		})
	})
}

// set shows a review (hides the panel when nothing is held).
func (r *reviewPanel) set(rev app.ToolReview) {
	r.review = rev
	if len(rev.Changes) == 0 && rev.Problem == "" {
		r.current = ""
		r.root.Hide()
		r.t.layoutRoot()
		return
	}
	pending := rev.Pending()
	switch {
	case rev.Problem != "":
		r.Header.SetText("Keyport could not read this server's approved tool definitions (" + rev.Problem + "). Every tool is held until you review it.")
	case pending == 0:
		r.Header.SetText(fmt.Sprintf("%d held %s, kept blocked. Clients do not see them.", len(rev.Changes), plural(len(rev.Changes), "tool", "tools")))
	case rev.Mode == "warn":
		r.Header.SetText(fmt.Sprintf("%d tool %s to review. Pinning is in warn mode: clients already see them.", pending, plural(pending, "change", "changes")))
	default:
		r.Header.SetText(fmt.Sprintf("%d tool %s to review. Keyport hides these tools from clients, and refuses their calls, until you approve them.", pending, plural(pending, "change", "changes")))
	}
	opts := make([]string, len(rev.Changes))
	sel := ""
	for i, c := range rev.Changes {
		opts[i] = option(c)
		if c.Tool == r.current {
			sel = opts[i]
		}
	}
	if sel == "" && len(opts) > 0 {
		sel = opts[0]
		for i, c := range rev.Changes { // the first one still to review
			if !c.Blocked && !c.DeniedByPolicy {
				sel = opts[i]
				break
			}
		}
	}
	r.Held.Options = opts
	r.Held.Selected = ""
	r.Held.SetSelected(sel) // calls showTool
	if len(opts) == 0 {
		r.showTool("")
	}
	r.root.Show()
	r.t.layoutRoot()
}

// change is the held tool called name, if any.
func (r *reviewPanel) change(name string) (app.ToolChange, bool) {
	for _, c := range r.review.Changes {
		if c.Tool == name {
			return c, true
		}
	}
	return app.ToolChange{}, false
}

// showTool shows one held tool's diff and flags.
func (r *reviewPanel) showTool(name string) {
	r.current = name
	c, ok := r.change(name)
	if !ok {
		r.What.SetText("")
		r.Flags.SetText("")
		r.Flags.Hide()
		r.Old.Segments, r.New.Segments = nil, nil
		r.Old.Refresh()
		r.New.Refresh()
		r.updateButtons()
		return
	}
	what := fmt.Sprintf("A new tool (%s), not approved yet.", shortHash(c.NewHash))
	if c.Kind == "changed" {
		what = fmt.Sprintf("Changed since you approved it (%s → %s).", shortHash(c.OldHash), shortHash(c.NewHash))
	}
	if c.Blocked {
		what += " You kept it blocked."
	}
	if c.DeniedByPolicy {
		what += " The tool policy denies it anyway."
	}
	r.What.SetText(what)
	if len(c.Flags) > 0 {
		r.Flags.SetText("Suspicious text:\n• " + strings.Join(c.Flags, "\n• "))
		r.Flags.Show()
	} else {
		r.Flags.SetText("")
		r.Flags.Hide()
	}
	r.Old.Segments, r.New.Segments = diffSegments(c)
	r.Old.Refresh()
	r.New.Refresh()
	r.updateButtons()
}

// diffSegments renders a change's description and schema diffs as the two
// sides: removed lines in the error colour, added ones in the success
// colour, unchanged ones plain; a missing line is left blank so the rows
// stay side by side.
func diffSegments(c app.ToolChange) (old, cur []widget.RichTextSegment) {
	section := func(title string, rows []app.DiffRow) {
		head := func() *widget.TextSegment {
			return &widget.TextSegment{Text: title, Style: widget.RichTextStyle{SizeName: theme.SizeNameCaptionText, TextStyle: fyne.TextStyle{Italic: true}}}
		}
		old, cur = append(old, head()), append(cur, head())
		if len(rows) == 0 {
			none := func() *widget.TextSegment {
				return &widget.TextSegment{Text: "(none)", Style: widget.RichTextStyle{ColorName: theme.ColorNamePlaceHolder}}
			}
			old, cur = append(old, none()), append(cur, none())
			return
		}
		line := func(text string, color fyne.ThemeColorName) *widget.TextSegment {
			if text == "" {
				text = " "
			}
			return &widget.TextSegment{Text: text, Style: widget.RichTextStyle{ColorName: color, TextStyle: fyne.TextStyle{Monospace: true}}}
		}
		for _, row := range rows {
			switch row.Op {
			case " ":
				old, cur = append(old, line(row.Old, "")), append(cur, line(row.New, ""))
			case "-":
				old, cur = append(old, line("- "+row.Old, theme.ColorNameError)), append(cur, line("", ""))
			case "+":
				old, cur = append(old, line("", "")), append(cur, line("+ "+row.New, theme.ColorNameSuccess))
			default:
				old, cur = append(old, line("- "+row.Old, theme.ColorNameError)), append(cur, line("+ "+row.New, theme.ColorNameSuccess))
			}
		}
	}
	section("Description", c.DescriptionDiff)
	section("Schema", c.SchemaDiff)
	return old, cur
}

func shortHash(h string) string {
	h = strings.TrimPrefix(h, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return "sha256:" + h
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (r *reviewPanel) updateButtons() {
	c, ok := r.change(r.current)
	enable := func(b *widget.Button, on bool) {
		if on && !r.busy {
			b.Enable()
		} else {
			b.Disable()
		}
	}
	enable(r.Approve, ok)
	enable(r.Block, ok && !c.Blocked)
	enable(r.ApproveAll, len(r.review.Changes) > 0)
	enable(r.BlockAll, r.review.Pending() > 0)
}

// decide approves or keeps blocked the shown tool (or all), in the
// background, then reloads the review and the tool list.
func (r *reviewPanel) decide(approve, all bool) {
	name := r.t.name
	var tools []string
	if !all {
		if r.current == "" {
			return
		}
		tools = []string{r.current}
	}
	r.busy = true
	r.updateButtons()
	r.t.u.bg(func() {
		var err error
		if approve {
			_, err = r.t.u.core.ApproveTools(name, tools, all)
		} else {
			_, err = r.t.u.core.BlockTools(name, tools, all)
		}
		r.t.u.do(func() {
			r.busy = false
			if name != r.t.name {
				return
			}
			if err != nil {
				r.What.SetText("Not done: " + err.Error())
				r.What.Importance = widget.DangerImportance
				r.What.Refresh()
				r.updateButtons()
				return
			}
			r.What.Importance = widget.MediumImportance
			r.load()
			if r.t.loadedFor == name {
				r.t.load()
			}
		})
	})
}
