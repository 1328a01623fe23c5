// Command keyport-cli is Keyport's command line without the desktop app: the
// same verbs as keyport (ls, add, config, proxy, connect, login …) in a
// binary that links no GUI toolkit.
//
// It exists for `keyport connect`: an AI client starts one bridge per
// server and keeps it for hours, so its footprint counts. Linked with fyne,
// the bridge needs about twice the memory (the GUI's code and libraries are
// mapped and initialised at exec) and twice the start-up. Keyport writes this
// binary into stdio clients' entries when it sits next to the app's binary,
// and the app's binary otherwise.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"keyport/app/cli"
	_ "keyport/app/telemetry/otlp" // `keyport-cli proxy` exports to OpenTelemetry collectors, like the app's binary
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.MainAs(ctx, "keyport-cli", os.Args[1:], cli.StdIO())
	stop()
	os.Exit(code)
}
