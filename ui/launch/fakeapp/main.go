// Command fakeapp runs Keyport's real window and tray (fyne's GL driver,
// the system tray over D-Bus) over an in-memory core, ui/fakecore. It is a
// development and benchmark aid for the GUI alone: it starts no proxy and
// touches no keychain or client file.
//
//	KEYPORT_FAKE_SERVERS=N   N generated servers instead of the sample catalog
//	KEYPORT_FAKE_READY=PATH  write PATH once the window is shown (benchmarks)
//	KEYPORT_SCREENSHOTS=DIR  write the views as PNGs and quit (as keyport does)
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"keyport/app"
	"keyport/app/instance"
	"keyport/ui/fakecore"
	"keyport/ui/launch"
)

func main() {
	core := fakecore.Sample()
	if n, err := strconv.Atoi(os.Getenv("KEYPORT_FAKE_SERVERS")); err == nil && n > 0 {
		core = fakecore.New(fakecore.Generate(n)...)
	}
	launch.OnShown = func() {
		if p := os.Getenv("KEYPORT_FAKE_READY"); p != "" {
			_ = os.WriteFile(p, []byte("shown\n"), 0o600)
		}
	}
	err := launch.Run(core)
	if errors.Is(err, instance.ErrRunning) {
		fmt.Fprintln(os.Stderr, "fakeapp:", err)
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeapp:", err)
		os.Exit(1)
	}
	_ = app.AppID
}
