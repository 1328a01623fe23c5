package app

// Version is Keyport's version. Release builds set it with
// -ldflags "-X keyport/app.Version=1.2.3"; FyneApp.toml carries the same value.
var Version = "0.1.0"

// AppID is the application identifier used by the desktop integration
// (fyne preferences, the single-instance lock, autostart entries).
const AppID = "dev.keyport.Keyport"
