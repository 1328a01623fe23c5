package launch

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"fyne.io/fyne/v2"

	"keyport/app"
	"keyport/app/instance"
	"keyport/app/oauth"
	"keyport/app/remote"
	"keyport/ui/tray"
)

// ArgWindow is the argument that makes the keyport binary the window
// process; the tray process passes it when it starts the window.
const ArgWindow = "--window"

// TrayOptions change how RunTray starts.
type TrayOptions struct {
	// Background starts Keyport in the tray without opening its window
	// (start at login).
	Background bool
	// Executable is the keyport binary to start the window with; empty
	// means this process's own.
	Executable string
}

// RunTray is the tray process: it serves core on the control socket, shows
// the system tray, starts the window process (unless Background) and
// whenever the user asks for the window, and blocks until the user quits
// (the tray's Quit, the window's "Quit Keyport", SIGINT or SIGTERM). The
// caller closes core afterwards, which stops the proxies gracefully. Call
// Claim first: RunTray is the one Keyport of its config dir.
func RunTray(core *app.App, opts TrayOptions) error {
	defer release()
	// A server that needs a new sign-in mid-session (more scopes, a dead
	// refresh token): a notification and the tray's "Sign in to NAME".
	core.SetSignInPrompt(app.PromptTray, nil, 0)
	dir, err := instance.DefaultDir()
	if err != nil {
		return err
	}
	exe := opts.Executable
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("find the keyport binary to start the window with: %w", err)
		}
	}
	ln, err := remote.Listen(dir)
	if err != nil {
		return fmt.Errorf("serve the window: %w", err)
	}
	var quitOnce sync.Once
	quit := func() { quitOnce.Do(tray.StopSystray) }
	srv := remote.Serve(ln, core, remote.ServeOptions{
		OpenURL: oauth.BrowserOpener(os.Getenv),
		OnQuit:  quit,
	})
	win := &windowProcess{exe: exe, raise: srv.Raise, connected: func() bool { return srv.Connected() > 0 }}
	if os.Getenv(EnvScreenshots) != "" {
		// make screenshot: the window writes its PNGs and quits; so do we.
		win.onExit = quit
	}
	defer func() {
		// Closing the socket ends the window process too.
		srv.Close()
		win.wait(5 * time.Second)
	}()

	// A later launch asks for the window.
	claimed.Lock()
	show := claimed.show
	claimed.Unlock()
	if show != nil {
		go func() {
			for range show {
				win.open()
			}
		}()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			quit()
		}
	}()

	var tr *tray.Tray
	ready := make(chan struct{})
	tray.RunSystray(func(host tray.Host) {
		defer close(ready)
		if host == nil {
			slog.Warn("no system tray (no session D-Bus): closing the window leaves Keyport running; launch Keyport again to bring the window back")
			host = noHost{}
		}
		tr = tray.New(core, host, tray.Options{
			OpenWindow: win.open,
			Quit:       quit,
			OpenURL:    oauth.BrowserOpener(os.Getenv),
			Notify:     tray.Notifier("Keyport"),
			Throttle:   tray.RefreshEvery,
		})
		if !opts.Background {
			win.open()
		} else if p := os.Getenv(EnvReadyFile); p != "" {
			_ = os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
		}
	}, win.open)
	<-ready
	tr.Close()
	tr.Wait()
	return nil
}

// noHost is the tray without a desktop tray: nothing shows.
type noHost struct{}

func (noHost) SetIcon([]byte)     {}
func (noHost) SetTooltip(string)  {}
func (noHost) SetMenu(*fyne.Menu) {}

// windowProcess starts the window process and keeps one at a time.
type windowProcess struct {
	exe    string
	raise  func() // bring a running window to the front
	onExit func() // called when a window process ends (may be nil)
	// connected reports whether a window is connected to the control
	// socket; nil: assume the running window process is.
	connected func() bool

	mu      sync.Mutex
	running bool
	done    chan struct{}
}

// closingGrace bounds the wait for a window process that is closing
// before a new one starts.
const closingGrace = 5 * time.Second

// open shows the window: it brings a running one forward or starts one.
func (w *windowProcess) open() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running {
		if w.connected == nil || w.connected() {
			w.raise()
			return
		}
		// Running but not connected: the window is closing (its
		// connection ends before its process) or still starting. Asked
		// for right after the user closed it, a new one must open once
		// the old process is gone; a starting one shows by itself.
		done := w.done
		go func() {
			select {
			case <-done:
				w.open()
			case <-time.After(closingGrace):
				w.raise()
			}
		}()
		return
	}
	cmd := exec.Command(w.exe, ArgWindow)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		slog.Error("could not open Keyport's window", "err", err)
		return
	}
	w.running, w.done = true, make(chan struct{})
	done := w.done
	go func() {
		if err := cmd.Wait(); err != nil {
			slog.Warn("Keyport's window process ended with an error", "err", err)
		}
		w.mu.Lock()
		w.running = false
		w.mu.Unlock()
		close(done)
		if w.onExit != nil {
			w.onExit()
		}
	}()
}

// wait waits up to d for a window process to end (it ends by itself when
// the control socket closes).
func (w *windowProcess) wait(d time.Duration) {
	w.mu.Lock()
	done := w.done
	w.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(d):
		slog.Warn("Keyport's window did not close in time")
	}
}
