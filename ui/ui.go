// Package ui is Keyport's desktop interface: the main window, its dialogs and
// the system tray menu. It is the only package that uses fyne. It never
// creates the fyne application itself (ui/launch does), so its tests run with
// fyne's headless test driver and without cgo.
//
// Threading: fyne callbacks run on the fyne goroutine. Anything slow
// (keychain, network, starting a proxy) runs in a goroutine of ours, which
// touches widgets only through fyne.Do.
package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/widget"

	"keyport/app"
	"keyport/assets"
)

// Resources for the icons, shared by the window and the tray.
var (
	AppIcon    = fyne.NewStaticResource("keyport.png", assets.AppIcon)
	trayIdle   = fyne.NewStaticResource("tray-idle.png", assets.TrayIdle)
	trayActive = fyne.NewStaticResource("tray-active.png", assets.TrayActive)
	trayError  = fyne.NewStaticResource("tray-error.png", assets.TrayError)
)

// UI is the Keyport window and tray. Its exported widgets are what tests tap.
type UI struct {
	fyne fyne.App
	core *app.App

	Window fyne.Window
	Search *widget.Entry
	List   *widget.List
	Empty  *widget.Label
}

// New builds the window and the tray for core inside the fyne application fa.
func New(fa fyne.App, core *app.App) *UI {
	u := &UI{fyne: fa, core: core}
	fa.SetIcon(AppIcon)
	u.Window = fa.NewWindow("Keyport")
	u.Window.SetIcon(AppIcon)
	u.Window.SetContent(u.content())
	u.Window.Resize(fyne.NewSize(900, 600))
	// Closing the window keeps Keyport running in the tray.
	u.Window.SetCloseIntercept(u.Window.Hide)
	if desk, ok := fa.(desktop.App); ok {
		desk.SetSystemTrayIcon(trayIdle)
		desk.SetSystemTrayMenu(trayMenu(u.ShowWindow, u.Quit))
	} else {
		// Without a tray nothing could bring the window back: closing quits.
		u.Window.SetCloseIntercept(u.Quit)
	}
	return u
}

func (u *UI) content() fyne.CanvasObject {
	u.Search = widget.NewEntry()
	u.Search.SetPlaceHolder("Search servers")
	u.List = widget.NewList(
		func() int { return 0 },
		func() fyne.CanvasObject { return widget.NewLabel("server") },
		func(widget.ListItemID, fyne.CanvasObject) {},
	)
	u.Empty = widget.NewLabel("No servers yet. Add one, or import one from an MCP registry.")
	u.Empty.Alignment = fyne.TextAlignCenter
	return container.NewBorder(u.Search, nil, nil, nil, container.NewStack(u.List, container.NewCenter(u.Empty)))
}

// ShowWindow shows the main window and brings it to the front.
func (u *UI) ShowWindow() {
	u.Window.Show()
	u.Window.RequestFocus()
}

// Quit closes the core and ends the application.
func (u *UI) Quit() {
	_ = u.core.Close()
	u.fyne.Quit()
}

// trayMenu builds the tray menu. It is a pure function of its inputs.
func trayMenu(open, quit func()) *fyne.Menu {
	openItem := fyne.NewMenuItem("Open Keyport", open)
	quitItem := fyne.NewMenuItem("Quit", quit)
	quitItem.IsQuit = true
	return fyne.NewMenu("Keyport", openItem, fyne.NewMenuItemSeparator(), quitItem)
}
