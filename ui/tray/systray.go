package tray

import (
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/systray"
)

// Systray is the desktop's tray through fyne.io/systray: StatusNotifierItem
// and dbusmenu over the session D-Bus on Linux and the BSDs, the native
// status item on macOS and Windows. There is one per process.
type Systray struct {
	mu sync.Mutex // one menu rebuild at a time
}

// SetIcon sets the tray icon (PNG).
func (*Systray) SetIcon(png []byte) { systray.SetIcon(png) }

// SetTooltip sets the icon's hover text.
func (*Systray) SetTooltip(text string) { systray.SetTooltip(text) }

// SetMenu replaces the menu. Each item's clicks are read by a goroutine
// that ends when the next SetMenu removes the item.
func (s *Systray) SetMenu(m *fyne.Menu) {
	s.mu.Lock()
	defer s.mu.Unlock()
	systray.ResetMenu()
	for _, it := range m.Items {
		if it.IsSeparator {
			systray.AddSeparator()
			continue
		}
		var mi *systray.MenuItem
		if it.Checked {
			mi = systray.AddMenuItemCheckbox(it.Label, "", true)
		} else {
			mi = systray.AddMenuItem(it.Label, "")
		}
		if it.Disabled {
			mi.Disable()
		}
		action := it.Action
		go func() {
			for range mi.ClickedCh {
				if action != nil {
					action()
				}
			}
		}()
	}
}

// RunSystray runs the desktop tray until StopSystray: ready is called on a
// goroutine of its own once the tray exists, and onTap when the user
// clicks the icon itself (where the desktop tells). When the desktop has no
// tray API (no session D-Bus on Linux), RunSystray calls ready with a nil
// Host and still blocks until StopSystray, so the app keeps running.
func RunSystray(ready func(Host), onTap func()) {
	if !trayAvailable() {
		go ready(nil)
		<-noTrayQuit
		return
	}
	if onTap != nil {
		systray.SetOnTapped(onTap)
	}
	systray.Run(func() { ready(&Systray{}) }, nil)
}

var (
	noTrayQuit = make(chan struct{})
	stopOnce   sync.Once
)

// StopSystray ends RunSystray; it is safe to call more than once.
func StopSystray() {
	stopOnce.Do(func() {
		if trayAvailable() {
			systray.Quit()
		} else {
			close(noTrayQuit)
		}
	})
}
