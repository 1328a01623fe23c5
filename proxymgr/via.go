package proxymgr

import (
	"net/http"
	"strings"
	"unicode"
)

// viaHeader is what a Keyport profile endpoint (proxymgr/gateway) sends
// with every request it forwards to a server's proxy: the profile's name,
// and for a tool call the tool as the client called it and what the
// profile changed about it ("coding; tool=issues; overrides=rename"). The
// proxy records it in the audit log and never forwards it. Any local
// client could send it; it only attributes, it grants nothing.
const viaHeader = "Keyport-Profile"

// maxVia bounds what the audit log keeps of it.
const maxVia = 256

// via is the audit log's "via" for r: "profile ..." or "".
func via(r *http.Request) string {
	v := r.Header.Get(viaHeader)
	if v == "" {
		return ""
	}
	v = strings.Map(func(c rune) rune {
		if unicode.IsControl(c) {
			return -1
		}
		return c
	}, v)
	if len(v) > maxVia {
		v = v[:maxVia]
	}
	return "profile " + v
}
