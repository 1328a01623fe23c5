//go:build cgo

// Command hello is the baseline for bench/ui: the smallest fyne app (one
// window with a label, no tray) with the same ready-file protocol as
// Keyport. fyne's GL driver wakes 60 times a second and Mesa's software
// renderer under Xvfb holds a fixed amount of memory; measuring this next
// to Keyport separates what Keyport costs from what the toolkit costs.
package main

import (
	"os"
	"strconv"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/widget"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		return
	}
	a := app.NewWithID("dev.keyport.BenchHello")
	w := a.NewWindow("hello")
	w.SetContent(widget.NewLabel("hello"))
	w.Resize(fyne.NewSize(900, 600))
	if p := os.Getenv("KEYPORT_READY_FILE"); p != "" {
		a.Lifecycle().SetOnStarted(func() {
			_ = os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
		})
	}
	w.ShowAndRun()
}
