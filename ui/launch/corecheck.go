package launch

import (
	"keyport/app"
	"keyport/ui"
)

var _ ui.Core = (*app.App)(nil)
