package ui

import (
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"time"

	"fyne.io/fyne/v2"

	"keyport/app"
)

// Screenshot writes the window's current rendering (as fyne's canvas
// captures it) to dir/name.png. It must run on the fyne goroutine. The test
// driver renders with it; under a real GL driver use a Capturer instead.
func (u *UI) Screenshot(dir, name string) (string, error) {
	img := u.Window.Canvas().Capture()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("screenshot: %w", err)
	}
	path := filepath.Join(dir, name+".png")
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("screenshot: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return "", fmt.Errorf("screenshot %s: %w", path, err)
	}
	return path, f.Close()
}

// A Capturer writes what the screen shows of a window of the given pixel
// size to path. ui/launch captures the X display this way, because the GL
// driver's own canvas capture is blank under Xvfb.
type Capturer func(path string, width, height int) error

// screens lists the views make screenshot captures, in order.
// Each selects a server with something to show and a tab of the detail
// pane.
var screens = []struct {
	name string
	show func(*UI)
}{
	{"main", func(u *UI) { u.showcase("Overview", running) }},
	{"detail", func(u *UI) { u.showcase("Tools", withPolicy, running) }},
	{"audit", func(u *UI) { u.showcase("Audit", running) }},
	{"clients", func(u *UI) { u.showcase("Clients", withPolicy, running) }},
	{"managed", func(u *UI) { u.showcase("Overview", managed) }},
	{"review", func(u *UI) { u.showcase("Tools", withToolChanges, running) }},
	{"profiles", func(u *UI) {
		if u.ProfilesView == nil {
			u.showProfiles()
		}
	}},
	// The editor of the first running profile (else the first), over the
	// Profiles view: its servers' live tools, ticked, and their cost.
	{"profile", func(u *UI) {
		if u.ProfileEditor != nil {
			return
		}
		profiles := u.core.Profiles()
		if len(profiles) == 0 {
			return
		}
		pick := profiles[0]
		for _, p := range profiles {
			if p.State == app.ProxyRunning {
				pick = p
				break
			}
		}
		cur := pick.NewProfile
		u.showProfileEditor(&cur)
	}},
}

func managed(s app.ServerView) bool         { return s.Managed }
func running(s app.ServerView) bool         { return s.State == app.ProxyRunning }
func withToolChanges(s app.ServerView) bool { return s.ToolChanges > 0 }
func withPolicy(s app.ServerView) bool      { return len(s.Allow)+len(s.Deny) > 0 }

// showcase selects the first server that satisfies the first preference
// that any server satisfies (else the first server), and a tab.
func (u *UI) showcase(tab string, prefer ...func(app.ServerView) bool) {
	pick := -1
	for _, p := range prefer {
		for i, r := range u.shown {
			if p(r.ServerView) {
				pick = i
				break
			}
		}
		if pick >= 0 {
			break
		}
	}
	if pick < 0 && len(u.shown) > 0 {
		pick = 0
	}
	if pick >= 0 {
		u.List.Select(pick)
	}
	for _, it := range u.Detail.Tabs.Items {
		if it.Text == tab {
			u.Detail.Tabs.Select(it)
		}
	}
}

// ShotSize is the window's size in the screenshots, in fyne units: every
// view at one size, tall enough for the fixture's largest view (the Tools
// tab holding tools for review needs about 940), so that no view grows the
// window while it is captured. The X screen of make screenshot is taller
// still: a window that grows anyway grows downwards, not off the top.
var ShotSize = fyne.NewSize(1024, 960)

// Screenshots shows every view in screens in turn and captures it into dir.
// It runs on a goroutine of its own, not the fyne one.
func (u *UI) Screenshots(dir string, capture Capturer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("screenshots: %w", err)
	}
	for _, s := range screens {
		var size fyne.Size
		var scale float32
		fyne.DoAndWait(func() {
			u.Window.Resize(ShotSize)
			s.show(u)
		})
		time.Sleep(700 * time.Millisecond) // let the view render
		fyne.DoAndWait(func() { size, scale = u.Window.Canvas().Size(), u.Window.Canvas().Scale() })
		path := filepath.Join(dir, s.name+".png")
		if err := capture(path, int(size.Width*scale), int(size.Height*scale)); err != nil {
			return fmt.Errorf("screenshot %s: %w", s.name, err)
		}
		fmt.Fprintln(os.Stderr, "wrote", path)
	}
	return nil
}
