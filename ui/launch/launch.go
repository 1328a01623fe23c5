// Package launch starts the real desktop application: it creates the fyne
// app (which needs cgo and a graphical session) and hands it to package ui.
// Keeping this apart lets package ui test headless without cgo.
package launch

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"

	"keyport/app"
	"keyport/ui"
)

// ErrNoDisplay is returned when there is no graphical session to open a window in.
var ErrNoDisplay = errors.New("no graphical session: Keyport's window needs a display " +
	"(DISPLAY or WAYLAND_DISPLAY is not set). The CLI verbs work without one: run 'keyport --help'")

// HasDisplay reports whether a window can be opened. On Linux and the BSDs
// that needs an X11 or Wayland session; macOS and Windows always have one.
func HasDisplay() bool {
	switch runtime.GOOS {
	case "darwin", "windows", "android", "ios":
		return true
	}
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
}

// Run opens Keyport's window and tray and blocks until the user quits.
// When the environment variable KEYPORT_SCREENSHOTS names a folder, it
// writes PNGs of the window's views there and quits instead (make screenshot).
func Run(core ui.Core) error {
	if !HasDisplay() {
		return ErrNoDisplay
	}
	fa := fyneapp.NewWithID(app.AppID)
	u := ui.New(fa, core)
	if dir := os.Getenv("KEYPORT_SCREENSHOTS"); dir != "" {
		var shotErr error
		fa.Lifecycle().SetOnStarted(func() {
			go func() {
				// Let the first frames render before capturing.
				time.Sleep(1500 * time.Millisecond)
				shotErr = u.Screenshots(dir, captureX)
				fyne.Do(fa.Quit)
			}()
		})
		u.ShowWindow()
		fa.Run()
		if shotErr != nil {
			return fmt.Errorf("screenshots: %w", shotErr)
		}
		return nil
	}
	u.ShowWindow()
	fa.Run()
	return nil
}

// captureX grabs the top-left width×height pixels of the X display (where
// the window sits under a bare Xvfb with no window manager) with ImageMagick.
func captureX(path string, width, height int) error {
	out, err := exec.Command("import", "-window", "root",
		"-crop", fmt.Sprintf("%dx%d+0+0", width, height), "+repage", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("import (ImageMagick): %v: %s", err, out)
	}
	return nil
}
