package app

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app/autostart"
	"keyport/app/catalog"
	"keyport/proxymgr"
	"keyport/proxymgr/audit"
	"keyport/proxymgr/policy"
)

// Tools lists a server's tools, each marked allowed or not by its current
// policy, for the policy editor. The list comes straight from the upstream,
// with the server's own credentials: through the proxy the denied tools
// would be hidden, and the editor must show them to let the user allow
// them again. Each tool carries its tool pinning state, judged on the
// same bytes a proxy would see; new and changed definitions are recorded
// for review as a proxy would record them.
func (a *App) Tools(ctx context.Context, name string) ([]Tool, error) {
	s, err := a.server(name)
	if err != nil {
		return nil, err
	}
	pol, err := policy.Compile(s.Tools.Allow, s.Tools.Deny)
	if err != nil {
		return nil, err
	}
	endpoint := s.URL
	if a.isDemo(s.Name) {
		if endpoint, err = a.ensureDemo(ctx); err != nil {
			return nil, err
		}
	}
	hc, err := a.upstreamClient(s)
	if err != nil {
		return nil, err
	}
	raw := &capture{base: hc.Transport}
	hc.Transport = raw
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "keyport", Version: Version}, nil)
	sess, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, MaxRetries: -1}, nil)
	if err != nil {
		return nil, fmt.Errorf("list %s's tools: %w", name, err)
	}
	defer sess.Close()
	var out []Tool
	for t, err := range sess.Tools(ctx, nil) {
		if err != nil {
			return nil, fmt.Errorf("list %s's tools: %w", name, err)
		}
		out = append(out, Tool{Name: t.Name, Description: t.Description, Allowed: pol.Allowed(t.Name)})
	}
	sess.Close()
	return a.judgeTools(s, out, raw.wait(5*time.Second)), nil
}

// upstreamClient is an HTTP client that adds a server's headers and
// credentials and trusts its CA file.
func (a *App) upstreamClient(s catalog.Server) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if s.TLS.CAFile != "" {
		p, err := s.CAFilePath()
		if err != nil {
			return nil, err
		}
		pool, err := proxymgr.CAPool(p)
		if err != nil {
			return nil, fmt.Errorf("server %s: tls.ca_file: %w", s.Name, err)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: &credTransport{base: tr, static: s.Headers, creds: a.credentialsFunc(s)}}, nil
}

// credTransport adds static headers and credentials to each request.
type credTransport struct {
	base   http.RoundTripper
	static map[string]string
	creds  func(context.Context) (http.Header, error)
}

func (t *credTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.static {
		r.Header.Set(k, v)
	}
	if t.creds != nil {
		h, err := t.creds(r.Context())
		if err != nil {
			return nil, err
		}
		for k, vs := range h {
			r.Header[k] = vs
		}
	}
	return t.base.RoundTrip(r)
}

// CheckPolicy returns the tools of list that allow and deny would allow, or
// the error naming a bad pattern.
func (a *App) CheckPolicy(allow, deny []string, tools []string) ([]string, error) {
	p, err := policy.Compile(allow, deny)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range tools {
		if p.Allowed(t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// maxAuditTail bounds how much of an audit log Audit reads.
const maxAuditTail = 4 << 20

// Audit returns the newest n entries of a server's audit log, oldest first
// (n <= 0: all in the current file). Right after a rotation the current
// file holds few entries; the rest come from the previous one (FILE.1).
func (a *App) Audit(name string, n int) ([]AuditEntry, error) {
	path := a.AuditPath(name)
	out, err := readAuditTail(path, n)
	if err != nil {
		return nil, fmt.Errorf("read %s's audit log: %w", name, err)
	}
	if n > 0 && len(out) < n {
		older, err := readAuditTail(path+".1", n-len(out))
		if err != nil {
			return nil, fmt.Errorf("read %s's audit log: %w", name, err)
		}
		out = append(older, out...)
	}
	return out, nil
}

// readAuditTail reads the newest n entries (n <= 0: all) of one audit log
// file, oldest first; a missing file has none.
func readAuditTail(path string, n int) ([]AuditEntry, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxAuditTail {
		if _, err := f.Seek(fi.Size()-maxAuditTail, io.SeekStart); err != nil {
			return nil, err
		}
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var out []AuditEntry
	for sc.Scan() {
		line := sc.Text()
		var e audit.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Type == "" {
			continue // a partial first line after the seek, or a torn write
		}
		out = append(out, AuditEntry{
			Time: e.Time, Event: e.Type, Method: e.Method, Tool: e.Tool, Outcome: e.Outcome,
			Duration: time.Duration(e.DurationMS * float64(time.Millisecond)), Raw: strings.TrimSpace(line),
		})
		if n > 0 && len(out) > 2*n {
			out = append(out[:0], out[len(out)-n:]...)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if n > 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}

// autostartEntry is Keyport's start-at-login entry.
func (a *App) autostartEntry() autostart.Entry {
	e := autostart.New(a.exe)
	e.Args = []string{"--background"} // start in the tray, window closed
	e.Dir = a.autostartDir
	return e
}

// Autostart reports whether Keyport starts at login.
func (a *App) Autostart() bool {
	on, err := a.autostartEntry().Enabled()
	return err == nil && on
}

// SetAutostart turns starting at login on or off.
func (a *App) SetAutostart(on bool) error {
	if on {
		return a.autostartEntry().Enable()
	}
	return a.autostartEntry().Disable()
}
