package oauth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"keyport/proxymgr/peercred"
)

// callbackPath is the path of the loopback redirect URI.
const callbackPath = "/callback"

// callback is the loopback HTTP server the authorization server redirects
// the browser to. It hands the first callback that belongs to this sign-in
// (the right Host and the right state) to the login and answers the
// browser with the login's final outcome, so the browser ends on a page
// that tells the truth. Any other request to it (another local program
// racing the browser, an old tab) gets a plain 400 page and changes
// nothing: the listener keeps waiting for the real redirect until the
// sign-in times out.
//
// Like the proxies, it serves only programs of the user running Keyport
// (peercred): the state is no secret from other users of the machine (it
// is in the command line of the browser Keyport starts), and another
// user's redirect carrying it, with a code the attacker obtained for
// Keyport's PKCE challenge (also in that URL), would sign Keyport in to
// the attacker's account.
type callback struct {
	server string
	ln     net.Listener
	srv    *http.Server
	// state is the OAuth state of this sign-in: only a callback carrying it
	// may end the sign-in.
	state string
	// results receives the first callback with the right state.
	results chan callbackResult
	once    sync.Once
	// done is closed when the login is over; a waiting handler gives up.
	done chan struct{}
	// refused counts callbacks turned away (wrong Host or state).
	refused atomic.Int64
}

// callbackResult is one callback and the way to answer it.
type callbackResult struct {
	query url.Values
	// reply receives the login's outcome (nil: signed in); the handler
	// renders the page from it.
	reply chan error
}

// listenCallback listens on 127.0.0.1:port (port 0: a free port).
func listenCallback(server string, port int) (*callback, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(port)))
	if err != nil {
		if port != 0 && addrInUse(err) {
			return nil, fmt.Errorf("callback port %d on 127.0.0.1 is in use by another program: "+
				"close it, or set another callback_port for %s in servers.yaml", port, server)
		}
		return nil, fmt.Errorf("listen for the sign-in callback on 127.0.0.1:%d: %w", port, err)
	}
	c := &callback{server: server, ln: ln, state: rand.Text(), results: make(chan callbackResult, 1), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc(callbackPath, c.handle)
	c.srv = &http.Server{
		Handler:           sameUser(c, mux),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          nil,
		ConnContext:       withConn,
	}
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

// connKey carries the accepted connection to the handler.
type connKey struct{}

func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// sameUser refuses, with 403, requests whose connection does not come from
// this OS user (or cannot be told to), before anything reads them.
func sameUser(c *callback, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _ := r.Context().Value(connKey{}).(net.Conn)
		if conn == nil || !peercred.CheckConn(conn).Allowed() {
			c.refused.Add(1)
			w.Header().Set("Connection", "close")
			renderPage(w, http.StatusForbidden, "Not your sign-in",
				"this sign-in belongs to another user of this machine; Keyport keeps waiting for its own user's browser")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// addrInUse reports whether a listen failed because the port is taken.
func addrInUse(err error) bool {
	const wsaEADDRINUSE = syscall.Errno(10048) // Windows
	return errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, wsaEADDRINUSE)
}

// redirectURI is the redirect URI to register and send.
func (c *callback) redirectURI() string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", c.port(), callbackPath)
}

func (c *callback) port() int { return c.ln.Addr().(*net.TCPAddr).Port }

// close stops the server, letting a page being written finish.
func (c *callback) close() {
	close(c.done)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.srv.Shutdown(ctx)
}

// hostAllowed reports whether a callback's Host is a loopback name with
// the listener's port, as in the redirect URI (localhost too: some
// browsers rewrite 127.0.0.1 for display but never for requests, and a
// user may paste the URL). Anything else did not come from our redirect
// (DNS rebinding, a request to another name).
func (c *callback) hostAllowed(host string) bool {
	h, p, err := net.SplitHostPort(host)
	if err != nil || p != strconv.Itoa(c.port()) {
		return false
	}
	return h == "127.0.0.1" || strings.EqualFold(h, "localhost")
}

// replyTimeout bounds how long the browser waits for the login's outcome.
const replyTimeout = 2 * time.Minute

// errNotThisSignIn is the text of the page a callback that does not
// belong to this sign-in gets. It ends nothing.
var errNotThisSignIn = errors.New("this request does not belong to the sign-in Keyport is waiting for " +
	"(an old browser tab, or another program); Keyport keeps waiting for the right one")

func (c *callback) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// Only the browser's redirect to our redirect URI, carrying this
	// sign-in's state, may end the sign-in. Everything else is refused
	// without touching it: a forged request must not abort a sign-in.
	if !c.hostAllowed(r.Host) || !validState(r.URL.Query().Get("state"), c.state) {
		c.refused.Add(1)
		renderPage(w, http.StatusBadRequest, "Not a sign-in Keyport is waiting for", errNotThisSignIn.Error())
		return
	}
	first := false
	res := callbackResult{query: r.URL.Query(), reply: make(chan error, 1)}
	c.once.Do(func() {
		first = true
		c.results <- res
	})
	if !first {
		writePage(w, http.StatusConflict, c.server, errors.New("this sign-in was already answered; you can close this tab"))
		return
	}
	var outcome error
	select {
	case outcome = <-res.reply:
	case <-time.After(replyTimeout):
		outcome = errors.New("Keyport did not finish the sign-in in time")
	case <-c.done:
		select {
		case outcome = <-res.reply:
		default:
			outcome = errors.New("the sign-in was abandoned; start it again from Keyport")
		}
	case <-r.Context().Done():
		return
	}
	if outcome != nil {
		writePage(w, http.StatusBadRequest, c.server, outcome)
		return
	}
	writePage(w, http.StatusOK, c.server, nil)
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Keyport: {{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}h1{font-size:1.4em}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Text}}</p></body></html>
`))

// writePage writes the plain page the browser ends on. The error text is
// Keyport's own (it never holds a secret); html/template escapes it.
func writePage(w http.ResponseWriter, status int, server string, outcome error) {
	if outcome != nil {
		renderPage(w, status, "Sign-in to "+server+" failed", outcome.Error())
		return
	}
	renderPage(w, status, "Signed in to "+server, "Keyport is signed in. You can close this tab and return to your AI client.")
}

// renderPage writes a plain page with a title and one paragraph.
func renderPage(w http.ResponseWriter, status int, title, text string) {
	data := struct{ Title, Text string }{Title: title, Text: text}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, data)
}
