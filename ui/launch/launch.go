// Package launch starts the real desktop application: it creates the fyne
// app (which needs cgo and a graphical session) and hands it to package ui.
// Keeping this apart lets package ui test headless without cgo.
package launch

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"

	"keyport/app"
	"keyport/app/instance"
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

// EnvReadyFile names a file Run writes (with the process id) once the
// window is shown and the event loop runs: bench/ui measures start-up with it.
const EnvReadyFile = "KEYPORT_READY_FILE"

// claimed is this process's hold on being the one Keyport GUI.
var claimed struct {
	sync.Mutex
	in   *instance.Instance
	show chan struct{}
}

// Claim makes this process the one Keyport GUI for its config dir. If
// another is running, Claim asks it to bring its window forward and returns
// instance.ErrRunning: the caller should then exit successfully. Call it
// before creating the core (which starts proxies); Run calls it too, and a
// second call is a no-op.
func Claim() error {
	claimed.Lock()
	defer claimed.Unlock()
	if claimed.in != nil {
		return nil
	}
	dir, err := instance.DefaultDir()
	if err != nil {
		return err
	}
	show := make(chan struct{}, 1)
	in, err := instance.Acquire(dir, func() {
		select {
		case show <- struct{}{}:
		default: // a show is already pending
		}
	})
	if err != nil {
		return err
	}
	claimed.in, claimed.show = in, show
	return nil
}

// release gives the claim up (on exit).
func release() {
	claimed.Lock()
	defer claimed.Unlock()
	if claimed.in != nil {
		_ = claimed.in.Close() // waits for its handlers: nothing sends on show after
		close(claimed.show)
		claimed.in, claimed.show = nil, nil
	}
}

// Run opens Keyport's window and tray and blocks until the user quits.
// When another Keyport runs, it brings that one's window forward and
// returns instance.ErrRunning. When the environment variable
// KEYPORT_SCREENSHOTS names a folder, it writes PNGs of the window's views
// there and quits instead (make screenshot).
func Run(core ui.Core) error { return RunWith(core, Options{}) }

// Options change how Run starts the GUI.
type Options struct {
	// Background starts Keyport in the tray without opening its window
	// (start at login); without a tray the window opens anyway, or the user
	// could never reach it.
	Background bool
}

// RunWith is Run with options.
func RunWith(core ui.Core, opts Options) error {
	if !HasDisplay() {
		return ErrNoDisplay
	}
	if err := Claim(); errors.Is(err, instance.ErrRunning) {
		return err
	} else if err != nil {
		// Keyport still works without the single-instance guard.
		slog.Warn("single-instance check failed; a second launch will open a second window", "err", err)
	}
	defer release()
	fa := fyneapp.NewWithID(app.AppID)
	u := ui.New(fa, core)
	defer u.Close()
	// A later launch asks for the window: bring it forward.
	claimed.Lock()
	show := claimed.show
	claimed.Unlock()
	if show != nil {
		go func() {
			for range show {
				fyne.Do(u.ShowWindow)
			}
		}()
	}
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
	if p := os.Getenv(EnvReadyFile); p != "" {
		fa.Lifecycle().SetOnStarted(func() {
			_ = os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
		})
	}
	if !opts.Background || !u.HasTray() {
		u.ShowWindow()
	}
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
