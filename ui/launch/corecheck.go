package launch

import (
	"keyport/app"
	"keyport/ui"
)

// *app.App must implement ui.Core: the window and tray drive the real core.
var _ ui.Core = (*app.App)(nil)
