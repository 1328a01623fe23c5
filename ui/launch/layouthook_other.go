//go:build !unix

package launch

import "keyport/ui"

// serveLayout: the KEYPORT_TEST_LAYOUT hook is for the Linux real-window
// test; elsewhere it does nothing.
func serveLayout(*ui.UI) (stop func()) { return func() {} }
