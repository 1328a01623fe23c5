// Command keyport is Keyport: with no arguments it opens the tray app; with
// arguments it is the CLI (keyport --help).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"keyport/app"
	"keyport/app/cli"
	"keyport/app/instance"
	"keyport/ui/launch"
)

func main() {
	// --background is how the start-at-login entry launches the GUI: in
	// the tray, without opening the window.
	if len(os.Args) == 2 && os.Args[1] == "--background" {
		os.Exit(runGUI(launch.Options{Background: true}))
	}
	if len(os.Args) > 1 {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Main(ctx, os.Args[1:], cli.StdIO())
		stop()
		os.Exit(code)
	}
	os.Exit(runGUI(launch.Options{}))
}

func runGUI(opts launch.Options) int {
	// Logs go to stderr, never stdout.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if !launch.HasDisplay() {
		fmt.Fprintf(os.Stderr, "keyport: %v\n", launch.ErrNoDisplay)
		return cli.ExitFailure
	}
	// One Keyport GUI per user: a second launch brings the first one's
	// window forward and exits, before it could start any proxy.
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
	if err := launch.RunWith(core, opts); err != nil {
		fmt.Fprintf(os.Stderr, "keyport: %v\n", err)
		return cli.ExitFailure
	}
	return cli.ExitOK
}
