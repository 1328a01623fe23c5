package oauth

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"
)

// callbackPath is the path of the loopback redirect URI.
const callbackPath = "/callback"

// callback is the loopback HTTP server the authorization server redirects
// the browser to. It hands the first callback's query to the login and
// answers the browser with the login's final outcome, so the browser ends
// on a page that tells the truth.
type callback struct {
	server string
	ln     net.Listener
	srv    *http.Server
	// results receives the first callback.
	results chan callbackResult
	once    sync.Once
	// done is closed when the login is over; a waiting handler gives up.
	done chan struct{}
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
	c := &callback{server: server, ln: ln, results: make(chan callbackResult, 1), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc(callbackPath, c.handle)
	c.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          nil,
	}
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
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

// replyTimeout bounds how long the browser waits for the login's outcome.
const replyTimeout = 2 * time.Minute

func (c *callback) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
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
	data := struct{ Title, Text string }{
		Title: "Signed in to " + server,
		Text:  "Keyport is signed in. You can close this tab and return to your AI client.",
	}
	if outcome != nil {
		data.Title = "Sign-in to " + server + " failed"
		data.Text = outcome.Error()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, data)
}
