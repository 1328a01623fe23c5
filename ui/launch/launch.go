// Package launch starts the real desktop application, which is two
// processes. The tray process (RunTray) holds the application core, the
// proxies, the control socket (app/remote) and the system tray (ui/tray);
// it needs no OpenGL, so Keyport in the tray costs little memory and no CPU.
// The window process (RunWindow) creates the fyne app (cgo, a graphical
// session) over a remote core while the user has the window open, and ends
// when the window closes. Keeping this apart lets package ui test headless
// without cgo.
package launch

import (
	"errors"
	"fmt"
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
	"keyport/ui/tray"
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

// EnvReadyFile names a file RunWindow writes (with the window process's id)
// once the window is shown and its event loop runs; RunTray in the
// background writes its own id there once the tray runs. bench/ui measures
// start-up with it.
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
// before creating the core (which starts proxies); a second call is a
// no-op.
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

// WindowOptions tie the window process to the tray process.
type WindowOptions struct {
	// Done closes when the tray process is gone: the window quits.
	Done <-chan struct{}
	// Raise receives when the user asks for the window again (a second
	// launch, "Open Keyport" in the tray): it comes to the front.
	Raise <-chan struct{}
	// Crashed reports, once Done is closed, whether the tray process
	// vanished (crashed, killed) instead of quitting: the window then says
	// so and offers to start Keyport again instead of closing.
	Crashed func() bool
}

// RunWindow opens Keyport's window over core and blocks until the user
// closes it (the tray process keeps running). When the environment
// variable KEYPORT_SCREENSHOTS names a folder, it writes PNGs of the
// window's views there and quits instead (make screenshot).
func RunWindow(core ui.Core, opts WindowOptions) error {
	if !HasDisplay() {
		return ErrNoDisplay
	}
	fa := fyneapp.NewWithID(app.AppID)
	u := ui.New(fa, core)
	defer u.Close()
	u.SetTrayCheck(tray.HostShown)
	if opts.Raise != nil {
		go func() {
			for range opts.Raise {
				fyne.Do(u.ShowWindow)
			}
		}()
	}
	// ended closes when fyne's loop has returned: from then on fyne.Do has
	// no loop to run on (the core closing on the way out closes Done too).
	ended := make(chan struct{})
	run := func() {
		fa.Run()
		close(ended)
	}
	if opts.Done != nil {
		go func() {
			select {
			case <-opts.Done:
				if opts.Crashed != nil && opts.Crashed() {
					fyne.Do(func() { u.BackendLost(StartKeyport) })
					return
				}
				fyne.Do(fa.Quit)
			case <-ended:
			}
		}()
	}
	if dir := os.Getenv(EnvScreenshots); dir != "" {
		var shotErr error
		fa.Lifecycle().SetOnStarted(func() {
			go func() {
				// Let the first frames render before capturing.
				time.Sleep(1500 * time.Millisecond)
				shotErr = u.Screenshots(dir, captureX)
				fyne.Do(fa.Quit)
			}()
		})
		showPlaced(u)
		run()
		if shotErr != nil {
			return fmt.Errorf("screenshots: %w", shotErr)
		}
		return nil
	}
	defer serveLayout(u)()
	if p := os.Getenv(EnvReadyFile); p != "" {
		fa.Lifecycle().SetOnStarted(func() {
			_ = os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
		})
	}
	showPlaced(u)
	run()
	return nil
}

// StartKeyport starts Keyport (its tray process, which opens a window) as
// a process of its own that outlives this one. Its output goes nowhere:
// the stderr this process inherited may be a pipe nobody reads any more.
func StartKeyport() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe)
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}

// EnvScreenshots names the folder make screenshot collects PNGs in.
const EnvScreenshots = "KEYPORT_SCREENSHOTS"

// EnvTestLayout names a file the window process writes the positions of
// its named widgets to (ui.Layout, JSON) on each SIGUSR1: the hook of the
// real-window test (TestFirstMinuteInTheRealWindow). Unset, it is inert.
const EnvTestLayout = "KEYPORT_TEST_LAYOUT"

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
