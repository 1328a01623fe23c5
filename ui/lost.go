package ui

import (
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"
)

// LostDialog is shown when Keyport's background process vanished under the
// window (it crashed or was killed): the window can no longer do anything,
// and the user's proxies are down. nil while not shown.
type LostDialog struct {
	d     *dialog.ConfirmDialog
	Text  *widget.Label
	start func() error
	u     *UI
}

// BackendLost tells the user that Keyport's background process stopped
// unexpectedly and offers to start Keyport again: start launches it (a new
// background process, with its own window); this window then closes.
// "Close" just closes the window. Call it on the fyne goroutine.
func (u *UI) BackendLost(start func() error) {
	if u.quitting || u.LostDialog != nil {
		return
	}
	text := widget.NewLabel("Keyport's background process stopped unexpectedly, so your " +
		"servers' proxies are not running and this window can no longer change anything. " +
		"Start Keyport again to bring them back.")
	text.Wrapping = fyne.TextWrapWord
	l := &LostDialog{Text: text, start: start, u: u}
	l.d = dialog.NewCustomConfirm("Keyport stopped", "Start Keyport", "Close", text, func(ok bool) {
		if ok {
			l.Start()
			return
		}
		u.Quit()
	}, u.Window)
	l.d.Resize(fyne.NewSize(480, 220))
	u.LostDialog = l
	u.showDialog("Keyport stopped", l.d, l.d.Confirm)
}

// Start starts Keyport again and closes this window; if it cannot, it says
// why and stays.
func (l *LostDialog) Start() {
	l.u.bg(func() {
		err := l.start()
		l.u.do(func() {
			if err != nil {
				l.u.showError("Could not start Keyport", fmt.Errorf("%w; start it from your applications menu or run 'keyport'", err))
				return
			}
			l.u.Quit()
		})
	})
}
