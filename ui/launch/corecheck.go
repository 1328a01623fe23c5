package launch

import (
	"keyport/app"
	"keyport/app/remote"
	"keyport/ui"
)

// *app.App must implement ui.Core: the window and tray drive the real core.
var _ ui.Core = (*app.App)(nil)

// The window process's core is the tray process's, over the control socket.
var _ ui.Core = (*remote.Client)(nil)
