package app

import "keyport/proxymgr/peercred"

// Version is Keyport's version. Release builds set it with
// -ldflags "-X keyport/app.Version=1.2.3"; FyneApp.toml carries the same value.
var Version = "0.1.0"

// AppID is the application identifier used by the desktop integration
// (fyne preferences, the single-instance lock, autostart entries).
const AppID = "dev.keyport.Keyport"

// PeerCheck says whether Keyport's proxies refuse other OS users of this
// machine (package peercred): active on Linux, macOS and Windows when the
// system's lookup works, otherwise not, with the reason. `keyport version`
// and `keyport proxy` print it; the app's About line shows PeerCheckLine.
func PeerCheck() peercred.Support { return peercred.Supported() }

// PeerCheckLine is PeerCheck in a few words, for the app's About line.
func PeerCheckLine() string {
	if PeerCheck().Active {
		return "Only your own programs can use the proxies"
	}
	return "Other users of this computer can use the proxies (no peer check here)"
}
