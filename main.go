// Command keyport is Keyport: with no arguments it starts the tray app (and
// opens its window); with arguments it is the CLI (keyport --help).
//
// The desktop app is two processes of this binary: the tray process (no
// arguments, or --background at login) owns the core, the proxies and the
// system tray; it starts `keyport --window` while the user has the window
// open. See ui/launch.
package main

import (
	_ "earlyinit" // first of all inits: keeps fyne quiet in the C locale

	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"keyport/app"
	"keyport/app/cli"
	"keyport/app/instance"
	"keyport/app/remote"
	_ "keyport/app/telemetry/otlp" // the tray app and `keyport proxy` export to OpenTelemetry collectors
	"keyport/ui/launch"
)

func main() {
	switch {
	// --background is how the start-at-login entry launches Keyport: in
	// the tray, without opening the window.
	case len(os.Args) == 2 && os.Args[1] == "--background":
		os.Exit(runTray(launch.TrayOptions{Background: true}))
	case len(os.Args) == 2 && os.Args[1] == launch.ArgWindow:
		os.Exit(runWindow())
	case len(os.Args) > 1:
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Main(ctx, os.Args[1:], cli.StdIO())
		stop()
		os.Exit(code)
	}
	os.Exit(runTray(launch.TrayOptions{}))
}

// runTray runs the tray process: the core, its proxies and the tray.
func runTray(opts launch.TrayOptions) int {
	// Logs go to stderr, never stdout.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if !launch.HasDisplay() {
		fmt.Fprintf(os.Stderr, "keyport: %v\n", launch.ErrNoDisplay)
		return cli.ExitFailure
	}
	// One Keyport per user: a second launch brings the first one's window
	// forward and exits, before it could start any proxy.
	if err := launch.Claim(); errors.Is(err, instance.ErrRunning) {
		fmt.Fprintln(os.Stderr, "keyport: Keyport is already running; its window was brought forward")
		return cli.ExitOK
	} else if err != nil {
		slog.Warn("single-instance check failed; continuing", "err", err)
	}
	core, err := app.New(app.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "keyport: %v\n", err)
		return cli.ExitFailure
	}
	defer core.Close()
	if err := core.Start(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "keyport: %v\n", err)
		return cli.ExitFailure
	}
	if err := launch.RunTray(core, opts); err != nil {
		fmt.Fprintf(os.Stderr, "keyport: %v\n", err)
		return cli.ExitFailure
	}
	return cli.ExitOK
}

// runWindow runs the window process over the tray process's core.
func runWindow() int {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	dir, err := instance.DefaultDir()
	if err != nil {
		fmt.Fprintf(os.Stderr, "keyport: %v\n", err)
		return cli.ExitFailure
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	client, err := remote.Dial(ctx, remote.SocketPath(dir))
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "keyport: Keyport is not running (%v): start it with 'keyport'\n", err)
		return cli.ExitFailure
	}
	defer client.Close()
	if err := launch.RunWindow(client, launch.WindowOptions{Done: client.Done(), Raise: client.Raised(),
		Crashed: func() bool { return errors.Is(client.Err(), remote.ErrBackendGone) }}); err != nil {
		fmt.Fprintf(os.Stderr, "keyport: %v\n", err)
		return cli.ExitFailure
	}
	return cli.ExitOK
}
