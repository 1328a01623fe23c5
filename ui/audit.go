package ui

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"keyport/app"
)

// auditLimit is how many of the newest audit entries the tab shows.
const auditLimit = 500

// auditTab is a live tail of the selected server's audit log, newest first:
// it re-reads on EventAudit for the server (no polling), filters by text,
// and exports to a file.
type auditTab struct {
	u    *UI
	root fyne.CanvasObject

	Filter *widget.Entry
	Export *widget.Button
	Count  *subtleText
	List   *widget.List

	name    string
	entries []app.AuditEntry // newest first
	shown   []app.AuditEntry
	seq     int
}

var auditColumns = []struct {
	title string
	frac  float32
}{{"Time", 0.16}, {"Method", 0.21}, {"Tool", 0.28}, {"Outcome", 0.17}, {"Duration", 0.18}}

func newAuditTab(u *UI) *auditTab {
	t := &auditTab{u: u}
	t.Filter = widget.NewEntry()
	t.Filter.SetPlaceHolder("Filter by method, tool or outcome")
	t.Filter.OnChanged = func(string) { t.applyFilter() }
	t.Export = widget.NewButtonWithIcon("Export…", theme.DocumentSaveIcon(), t.export)
	t.Count = subtle("").wrap()
	newRow := func(bold bool) *fyne.Container {
		row := container.New(&columnsLayout{})
		for range auditColumns {
			l := widget.NewLabel("")
			l.Truncation = fyne.TextTruncateEllipsis
			l.TextStyle.Bold = bold
			row.Add(l)
		}
		return row
	}
	header := newRow(true)
	for i, c := range auditColumns {
		header.Objects[i].(*widget.Label).SetText(c.title)
	}
	t.List = widget.NewList(
		func() int { return len(t.shown) },
		func() fyne.CanvasObject { return newRow(false) },
		func(id widget.ListItemID, o fyne.CanvasObject) {
			if id >= len(t.shown) {
				return
			}
			e := t.shown[id]
			cells := o.(*fyne.Container).Objects
			cells[0].(*widget.Label).SetText(e.Time.Local().Format("15:04:05"))
			cells[1].(*widget.Label).SetText(orDefault(e.Method, e.Event))
			cells[2].(*widget.Label).SetText(orDefault(e.Tool, "–"))
			out := cells[3].(*widget.Label)
			out.Importance = outcomeImportance(e.Outcome)
			out.SetText(orDefault(e.Outcome, "–"))
			cells[4].(*widget.Label).SetText(durationText(e.Duration))
		},
	)
	top := container.NewVBox(container.NewBorder(nil, nil, nil, t.Export, t.Filter), t.Count, header, widget.NewSeparator())
	t.root = container.NewPadded(container.NewBorder(top, nil, nil, nil, t.List))
	return t
}

func outcomeImportance(o string) widget.Importance {
	switch o {
	case "ok":
		return widget.SuccessImportance
	case "error":
		return widget.DangerImportance
	case "denied":
		return widget.WarningImportance
	}
	return widget.MediumImportance
}

func (t *auditTab) show(v rowView, changed bool) {
	if changed {
		t.name = v.Name
		t.entries, t.shown = nil, nil
		t.seq++
		t.List.Refresh()
		t.Count.SetText("")
	}
}

// visible reports whether the audit tab is the one showing.
func (d *detail) auditVisible() bool {
	return d.view != nil && d.Tabs.Selected().Text == "Audit"
}

// reload re-reads the newest entries in the background.
func (t *auditTab) reload() {
	name := t.name
	if name == "" {
		return
	}
	t.seq++
	seq := t.seq
	t.u.bg(func() {
		entries, err := t.u.core.Audit(name, auditLimit)
		t.u.do(func() {
			if seq != t.seq {
				return
			}
			if err != nil {
				t.entries = nil
				t.Count.SetText("Could not read the audit log: " + err.Error())
				t.List.Refresh()
				return
			}
			slices.Reverse(entries)
			t.entries = entries
			t.applyFilter()
		})
	})
}

// applyFilter keeps the entries containing every word of the filter.
func (t *auditTab) applyFilter() {
	words := strings.Fields(strings.ToLower(t.Filter.Text))
	t.shown = t.shown[:0]
	for _, e := range t.entries {
		hay := strings.ToLower(e.Event + " " + e.Method + " " + e.Tool + " " + e.Outcome)
		ok := true
		for _, w := range words {
			if !strings.Contains(hay, w) {
				ok = false
				break
			}
		}
		if ok {
			t.shown = append(t.shown, e)
		}
	}
	t.List.Refresh()
	switch {
	case len(t.entries) == 0:
		t.Count.SetText("No requests yet. Entries appear here live as clients use the proxy.")
	case len(words) > 0:
		t.Count.SetText(fmt.Sprintf("%d of the last %d entries match.", len(t.shown), len(t.entries)))
	default:
		t.Count.SetText(fmt.Sprintf("The last %d entries, newest first.", len(t.entries)))
	}
}

// export asks for a file and writes the audit log into it: the whole log
// file when no filter is set, otherwise the matching entries' JSON lines.
func (t *auditTab) export() {
	name := t.name
	filtered := strings.TrimSpace(t.Filter.Text) != ""
	lines := make([]string, 0, len(t.shown))
	for i := len(t.shown) - 1; i >= 0; i-- { // oldest first in the file
		lines = append(lines, t.shown[i].Raw)
	}
	d := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
		if err != nil {
			t.u.showError("Export the audit log", err)
			return
		}
		if w == nil {
			return // cancelled
		}
		t.u.bg(func() {
			err := writeAudit(w, t.u.core.AuditPath(name), filtered, lines)
			t.u.do(func() {
				if err != nil {
					t.u.showError("Export the audit log", err)
					return
				}
				t.Count.SetText("Exported to " + w.URI().Path() + ".")
			})
		})
	}, t.u.Window)
	d.SetFileName(name + "-audit.jsonl")
	// Escape cancels; Enter is the file dialog's own (its name field saves).
	t.u.showDialog("Export the audit log", d, func() {})
}

// writeAudit writes either the log file at path or the given lines to w,
// and closes w.
func writeAudit(w io.WriteCloser, path string, filtered bool, lines []string) error {
	var err error
	if filtered {
		for _, l := range lines {
			if _, err = io.WriteString(w, strings.TrimRight(l, "\n")+"\n"); err != nil {
				break
			}
		}
	} else {
		var f *os.File
		f, err = os.Open(path)
		if err == nil {
			_, err = io.Copy(w, f)
			f.Close()
		} else if os.IsNotExist(err) {
			err = fmt.Errorf("no audit log yet at %s: turn the proxy on and use it first", path)
		}
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// columnsLayout lays cells out across the width in the audit columns'
// proportions.
type columnsLayout struct{}

func (*columnsLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	x := float32(0)
	for i, o := range objs {
		w := size.Width * auditColumns[i].frac
		o.Move(fyne.NewPos(x, 0))
		o.Resize(fyne.NewSize(w, size.Height))
		x += w
	}
}

func (*columnsLayout) MinSize(objs []fyne.CanvasObject) fyne.Size {
	h := float32(0)
	for _, o := range objs {
		h = fyne.Max(h, o.MinSize().Height)
	}
	return fyne.NewSize(100, h)
}
