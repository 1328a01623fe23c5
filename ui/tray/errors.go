package tray

import "errors"

var errNoBrowser = errors.New("no browser to open: set BROWSER or sign in with 'keyport login NAME'")
