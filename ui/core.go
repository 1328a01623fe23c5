package ui

import "keyport/app/remote"

// Core is what the window needs from the application core, one interface
// for every process: in the app it is the tray process's core over the
// control socket (*remote.Client); tests pass the real *app.App (a tapped
// switch starts a real proxy) or ui/fakecore (layout goldens). The methods
// and their contracts are documented on remote.Backend.
type Core = remote.Backend
