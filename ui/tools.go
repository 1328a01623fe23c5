package ui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"keyport/app"
)

// toolsTab is the tool policy editor: the server's live tool list (fetched
// through its proxy) with a checkbox per tool, the allow and deny pattern
// fields, a live preview of what the policy allows, and Save.
type toolsTab struct {
	u    *UI
	root fyne.CanvasObject

	Load    *widget.Button
	Status  *widget.Label
	Allow   *widget.Entry
	Deny    *widget.Entry
	Preview *widget.Label
	Save    *widget.Button
	Revert  *widget.Button
	List    *widget.List
	// Review is the tool pinning review above the editor (review.go).
	Review *reviewPanel
	editor fyne.CanvasObject
	body   *fyne.Container
	split  *container.Split

	name        string
	running     bool
	demo        bool   // the built-in demo: its policy is fixed
	note        string // the last save's result, shown until the server changes
	savedAllow  []string
	savedDeny   []string
	tools       []app.Tool
	loadedFor   string
	allowed     map[string]bool // preview result
	previewSeq  int
	loadSeq     int
	loadErr     string // the last load's error, shown until the next try
	dirty       bool
	programming bool   // we are setting the entries ourselves
	pinSeen     string // the view's pinning counts the review was loaded for
}

func newToolsTab(u *UI) *toolsTab {
	t := &toolsTab{u: u, allowed: map[string]bool{}}
	t.Load = widget.NewButtonWithIcon("Load tools", theme.ViewRefreshIcon(), t.load)
	t.Status = widget.NewLabel("")
	t.Status.Wrapping = fyne.TextWrapWord
	t.Allow = widget.NewEntry()
	t.Allow.SetPlaceHolder("everything (e.g. read_*, search)")
	t.Deny = widget.NewEntry()
	t.Deny.SetPlaceHolder("nothing (e.g. delete_*, ^drop_.*$)")
	edited := func(string) {
		if t.programming {
			return
		}
		t.dirty = true
		t.updateButtons()
		t.preview()
	}
	t.Allow.OnChanged, t.Deny.OnChanged = edited, edited
	// Enter in a pattern field saves, as the Save button does.
	submit := func(string) {
		if !t.Save.Disabled() {
			t.save()
		}
	}
	t.Allow.OnSubmitted, t.Deny.OnSubmitted = submit, submit
	t.Preview = widget.NewLabel("")
	t.Preview.Wrapping = fyne.TextWrapWord
	t.Save = widget.NewButtonWithIcon("Save policy", theme.DocumentSaveIcon(), t.save)
	t.Save.Importance = widget.HighImportance
	t.Revert = widget.NewButton("Revert", func() { t.setPatterns(t.savedAllow, t.savedDeny); t.dirty = false; t.updateButtons(); t.preview() })
	t.List = widget.NewList(
		func() int { return len(t.tools) },
		func() fyne.CanvasObject {
			c := widget.NewCheck("", nil)
			d := subtleTrunc("")
			return container.NewBorder(nil, nil, c, nil, d)
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			if id >= len(t.tools) {
				return
			}
			tool := t.tools[id]
			box := o.(*fyne.Container)
			d := box.Objects[0].(*subtleText)
			c := box.Objects[1].(*widget.Check)
			c.OnChanged = nil
			c.Text = tool.Name
			c.Checked = t.allowed[tool.Name]
			if t.demo {
				c.Disable()
			} else {
				c.Enable()
			}
			c.Refresh()
			c.OnChanged = func(on bool) { t.setTool(tool.Name, on) }
			d.SetText(pinBadge(tool.Pin) + tool.Description)
			box.Refresh() // the check's width follows its text
		},
	)
	help := subtle("Patterns are comma-separated: literal names, globs (read_*) or ^regex$. Deny wins; an empty allow list allows everything not denied.").wrap()
	help.seg.Style.SizeName = theme.SizeNameCaptionText
	fields := container.New(layout.NewFormLayout(),
		widget.NewLabel("Allow"), t.Allow,
		widget.NewLabel("Deny"), t.Deny)
	top := container.NewVBox(
		container.NewBorder(nil, nil, nil, t.Load, t.Status),
		fields, help,
	)
	bottom := container.NewVBox(widget.NewSeparator(), t.Preview,
		container.NewHBox(layout.NewSpacer(), t.Revert, t.Save))
	t.editor = container.NewBorder(top, bottom, nil, nil, t.List)
	t.Review = newReviewPanel(t)
	t.body = container.NewStack(t.editor)
	t.root = container.NewPadded(t.body)
	t.updateButtons()
	return t
}

// layoutRoot shows the review above the editor while something is held,
// the editor alone otherwise.
func (t *toolsTab) layoutRoot() {
	if t.Review.root.Visible() {
		if t.split == nil {
			t.split = container.NewVSplit(t.Review.root, t.editor)
			t.split.Offset = 0.55
		}
		if len(t.body.Objects) != 1 || t.body.Objects[0] != t.split {
			t.body.Objects = []fyne.CanvasObject{t.split}
			t.body.Refresh()
		}
		return
	}
	if len(t.body.Objects) != 1 || t.body.Objects[0] != t.editor {
		t.body.Objects = []fyne.CanvasObject{t.editor}
		t.body.Refresh()
	}
}

// pinBadge marks a listed tool that tool pinning holds.
func pinBadge(state string) string {
	switch state {
	case app.PinHeld:
		return "[held for review] "
	case app.PinBlocked:
		return "[blocked] "
	}
	return ""
}

// show follows the selected server. A new server resets the editor; the same
// server keeps unsaved edits, and takes outside policy changes otherwise.
func (t *toolsTab) show(v rowView, changed bool) {
	t.running = v.State == app.ProxyRunning
	t.demo = v.Demo
	if changed {
		t.name = v.Name
		t.tools, t.loadedFor = nil, ""
		t.allowed = map[string]bool{}
		t.loadSeq++
		t.List.Refresh()
		t.dirty = false
		t.Review.current = ""
		t.note = ""
	}
	if seen := fmt.Sprintf("%d %s", v.ToolChanges, v.PinsProblem); changed || seen != t.pinSeen {
		t.pinSeen = seen
		t.Review.load()
	}
	if t.demo {
		t.Allow.Disable()
		t.Deny.Disable()
	} else {
		t.Allow.Enable()
		t.Deny.Enable()
	}
	if !t.dirty && (changed || !slices.Equal(t.savedAllow, v.Allow) || !slices.Equal(t.savedDeny, v.Deny)) {
		t.savedAllow, t.savedDeny = slices.Clone(v.Allow), slices.Clone(v.Deny)
		t.setPatterns(v.Allow, v.Deny)
		t.preview()
	}
	if t.loadedFor == "" && (changed || t.loadErr == "") {
		t.loadErr = ""
		t.Status.Importance = widget.MediumImportance
		switch {
		case t.note != "": // a save's result stays until the server changes
			t.Status.Importance = widget.SuccessImportance
			t.Status.SetText(t.note)
		case t.running:
			t.Status.SetText("Choose Load tools to list this server's tools.")
		case v.State == app.ProxyUnreachable:
			t.Status.SetText("The server does not answer right now (see above); Load tools tries again. Patterns can be edited any time.")
		default:
			t.Status.SetText("Turn the proxy on to list this server's tools; patterns can be edited any time.")
		}
		if t.demo {
			t.Status.SetText(t.Status.Text + " The demo's policy is fixed: add a server of your own to try policies.")
		}
		t.Status.Refresh()
	}
	t.updateButtons()
}

// autoload fetches the tool list the first time the tab shows a running server.
func (t *toolsTab) autoload() {
	if t.loadedFor != t.name && t.running {
		t.load()
	}
}

func (t *toolsTab) setPatterns(allow, deny []string) {
	t.programming = true
	t.Allow.SetText(strings.Join(allow, ", "))
	t.Deny.SetText(strings.Join(deny, ", "))
	t.programming = false
}

func (t *toolsTab) updateButtons() {
	if t.dirty {
		t.Save.Enable()
		t.Revert.Enable()
	} else {
		t.Save.Disable()
		t.Revert.Disable()
	}
}

// load fetches the tool list through the proxy in the background.
func (t *toolsTab) load() {
	name := t.name
	if name == "" {
		return
	}
	t.loadSeq++
	seq := t.loadSeq
	t.Status.SetText("Loading tools through the proxy…")
	t.Load.Disable()
	t.u.bg(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		tools, err := t.u.core.Tools(ctx, name)
		cancel()
		t.u.do(func() {
			t.Load.Enable()
			if seq != t.loadSeq || name != t.name {
				return
			}
			if err != nil {
				t.loadErr = err.Error()
				t.Status.SetText("Could not list the tools: " + err.Error())
				t.Status.Importance = widget.DangerImportance
				t.Status.Refresh()
				return
			}
			t.Status.Importance = widget.MediumImportance
			t.loadErr = ""
			t.tools, t.loadedFor = tools, name
			t.allowed = map[string]bool{}
			for _, tool := range tools {
				t.allowed[tool.Name] = tool.Allowed
			}
			if t.demo {
				t.Status.SetText(fmt.Sprintf("%d tools via the proxy. The demo's policy is fixed: add a server of your own to try policies.", len(tools)))
			} else {
				t.Status.SetText(fmt.Sprintf("%d tools via the proxy. Untick one to deny it.", len(tools)))
			}
			t.List.Refresh()
			t.preview()
		})
	})
}

// setTool edits the patterns so that one tool becomes allowed or denied.
func (t *toolsTab) setTool(name string, on bool) {
	allow := parsePatterns(t.Allow.Text)
	deny := parsePatterns(t.Deny.Text)
	allow, deny = toggleTool(allow, deny, name, on)
	t.setPatterns(allow, deny)
	t.dirty = true
	t.allowed[name] = on // optimistic until the preview answers
	t.updateButtons()
	t.preview()
}

// toggleTool returns the patterns with one tool allowed (on) or denied.
// Denying removes its literal allow entry and adds it to deny; allowing
// removes its literal deny entry and, when an allow list exists, adds it.
func toggleTool(allow, deny []string, name string, on bool) ([]string, []string) {
	if on {
		deny = slices.DeleteFunc(deny, func(p string) bool { return p == name })
		if len(allow) > 0 && !slices.Contains(allow, name) {
			allow = append(allow, name)
		}
		return allow, deny
	}
	allow = slices.DeleteFunc(allow, func(p string) bool { return p == name })
	if !slices.Contains(deny, name) {
		deny = append(deny, name)
	}
	return allow, deny
}

// parsePatterns splits a comma-separated pattern field.
func parsePatterns(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// preview asks the core which tools the edited policy allows. Only the
// newest answer is shown.
func (t *toolsTab) preview() {
	allow, deny := parsePatterns(t.Allow.Text), parsePatterns(t.Deny.Text)
	names := make([]string, len(t.tools))
	for i, tool := range t.tools {
		names[i] = tool.Name
	}
	t.previewSeq++
	seq := t.previewSeq
	t.u.bg(func() {
		allowed, err := t.u.core.CheckPolicy(allow, deny, names)
		t.u.do(func() {
			if seq != t.previewSeq {
				return
			}
			if err != nil {
				t.Preview.SetText("Pattern error: " + err.Error())
				t.Preview.Importance = widget.DangerImportance
				t.Preview.Refresh()
				t.Save.Disable()
				return
			}
			t.Preview.Importance = widget.MediumImportance
			t.allowed = map[string]bool{}
			for _, n := range allowed {
				t.allowed[n] = true
			}
			t.Preview.SetText(previewText(allowed, names))
			t.List.Refresh()
			t.updateButtons()
		})
	})
}

// previewText says what the policy allows.
func previewText(allowed, all []string) string {
	if len(all) == 0 {
		return "Patterns are valid. Load the tools to preview what they allow."
	}
	if len(allowed) == len(all) {
		return fmt.Sprintf("All %d tools are allowed.", len(all))
	}
	if len(allowed) == 0 {
		return fmt.Sprintf("No tool is allowed (0 of %d).", len(all))
	}
	shown := allowed
	more := ""
	if len(shown) > 6 {
		more = fmt.Sprintf(" and %d more", len(shown)-6)
		shown = shown[:6]
	}
	return fmt.Sprintf("Allowed: %d of %d tools — %s%s.", len(allowed), len(all), strings.Join(shown, ", "), more)
}

// save stores the policy in the background.
func (t *toolsTab) save() {
	name := t.name
	allow, deny := parsePatterns(t.Allow.Text), parsePatterns(t.Deny.Text)
	t.Save.Disable()
	t.u.bg(func() {
		err := t.u.core.SetToolPolicy(name, allow, deny)
		t.u.do(func() {
			if name != t.name {
				return
			}
			if err != nil {
				t.Preview.SetText("Not saved: " + err.Error())
				t.Preview.Importance = widget.DangerImportance
				t.Preview.Refresh()
				t.updateButtons()
				return
			}
			t.dirty = false
			t.savedAllow, t.savedDeny = allow, deny
			t.updateButtons()
			t.note = "Policy saved. The proxy applies it to the next request."
			t.Status.Importance = widget.SuccessImportance
			t.Status.SetText(t.note)
		})
	})
}
