//go:build unix

package launch

import (
	"encoding/json"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"fyne.io/fyne/v2"

	"keyport/ui"
)

// serveLayout is the test hook of KEYPORT_TEST_LAYOUT (EnvTestLayout):
// when it names a file, every SIGUSR1 makes the window process write its
// ui.Layout there (JSON, with a "seq" counting the requests, replaced
// atomically), so a test driving the real window knows where to click.
// Without the variable it does nothing, and SIGUSR1 keeps its default
// action. It returns a function that ends the hook.
func serveLayout(u *ui.UI) (stop func()) {
	path := os.Getenv(EnvTestLayout)
	if path == "" {
		return func() {}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	go func() {
		seq := 0
		for range sigs {
			seq++
			var l ui.Layout
			fyne.DoAndWait(func() { l = u.Layout() })
			b, err := json.Marshal(struct {
				Seq int `json:"seq"`
				ui.Layout
			}{seq, l})
			if err == nil {
				tmp := path + ".tmp"
				if err = os.WriteFile(tmp, b, 0o600); err == nil {
					err = os.Rename(tmp, path)
				}
			}
			if err != nil {
				slog.Warn("could not write the window's layout", "file", path, "err", err)
			}
		}
	}()
	return func() { signal.Stop(sigs) }
}
