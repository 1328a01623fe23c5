package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// prefNoTrayTold is the window's preference set by "Don't show this again"
// in NoTrayDialog.
const prefNoTrayTold = "noTrayTold"

// NoTrayDialog is shown when the user closes the window on a desktop that
// shows no tray icons (plain GNOME): Keyport goes on running, invisible,
// and the user must know how to come back or stop it. nil when closed.
type NoTrayDialog struct {
	d        *dialog.CustomDialog
	DontShow *dialogCheck
	Keep     *dialogButton
	QuitAll  *dialogButton
}

// SetTrayCheck gives the window a way to ask whether the desktop shows
// Keyport's tray icon (tray.HostShown); without one it assumes it does.
func (u *UI) SetTrayCheck(shown func() bool) { u.trayShown = shown }

// CloseWindow is what closing the window does: the window goes, Keyport
// keeps running in the tray. When the desktop shows no tray icon, it first
// says so and how to come back, until the user asks not to be told again.
func (u *UI) CloseWindow() {
	if u.quitting || u.NoTrayDialog != nil {
		return
	}
	check := u.trayShown
	if check == nil || u.fyne.Preferences().Bool(prefNoTrayTold) {
		u.Quit()
		return
	}
	u.bg(func() {
		shown := check() // a D-Bus call
		u.do(func() {
			if shown {
				u.Quit()
				return
			}
			u.showNoTray()
		})
	})
}

func (u *UI) showNoTray() {
	text := widget.NewLabel("This desktop shows no tray icons, so Keyport's icon is not visible. " +
		"Closing this window leaves Keyport running in the background, with your proxies on.\n\n" +
		"To open this window again, launch Keyport again (from your applications menu, or run keyport). " +
		"On GNOME, the AppIndicator extension shows Keyport's icon.")
	text.Wrapping = fyne.TextWrapWord
	n := &NoTrayDialog{DontShow: u.newDialogCheck("Don't show this again")}
	close := func() {
		n.d.Hide()
		u.NoTrayDialog = nil
	}
	n.Keep = u.newDialogButton("Keep running", theme.ConfirmIcon(), func() {
		if n.DontShow.Checked {
			u.fyne.Preferences().SetBool(prefNoTrayTold, true)
		}
		close()
		u.Quit()
	})
	n.Keep.Importance = widget.HighImportance
	n.QuitAll = u.newDialogButton("Quit Keyport", theme.LogoutIcon(), func() {
		close()
		u.QuitKeyport()
	})
	cancel := u.newDialogButton("Cancel", nil, close)
	n.d = dialog.NewCustomWithoutButtons("Keyport keeps running", container.NewVBox(text, n.DontShow), u.Window)
	n.d.SetButtons([]fyne.CanvasObject{cancel, n.QuitAll, n.Keep})
	n.d.Resize(fyne.NewSize(520, 280))
	u.NoTrayDialog = n
	n.d.SetOnClosed(func() {
		if u.NoTrayDialog == n {
			u.NoTrayDialog = nil // Escape: as Cancel
		}
	})
	od := u.showDialog("Keyport keeps running", n.d, n.Keep.OnTapped)
	od.buttons = map[string]fyne.CanvasObject{"Cancel": cancel, "Quit Keyport": n.QuitAll, "Keep running": n.Keep}
}
