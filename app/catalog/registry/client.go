// Package registry searches MCP Registries (the v0.1 API of
// registry.modelcontextprotocol.io, and private registries with the same
// API) and turns an entry into a catalog server.
//
// A Client lists (GET {base}/v0.1/servers?search=&limit=&cursor=) and
// fetches the latest version of one server (GET
// {base}/v0.1/servers/{name}/versions/latest). By default it keeps only
// latest, active entries with a streamable-http remote: the servers Keyport
// can proxy. NewPlan and Plan.Resolve convert an entry into a
// catalog.Server, the questions to ask the user (URL variables, headers),
// and the secret header values for the keychain.
package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"keyport/app/catalog"
)

// DefaultTimeout bounds one registry request.
const DefaultTimeout = 15 * time.Second

// DefaultLimit is the page size asked for (the official registry's default).
const DefaultLimit = 30

// ErrNotFound reports a server the registry does not have.
var ErrNotFound = errors.New("not found in the registry")

// Options configure a Client.
type Options struct {
	// Name is how the registry is shown ("official", "corp"); defaults to
	// the base URL's host.
	Name string
	// HTTPClient is used for requests; nil means a client with Timeout.
	HTTPClient *http.Client
	// Timeout bounds each request (with the default HTTP client); 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// UserAgent is sent with every request; "" means "keyport".
	UserAgent string
}

// Client talks to one MCP Registry.
type Client struct {
	base    string
	name    string
	http    *http.Client
	timeout time.Duration
	ua      string
}

// New returns a client for the registry at base (e.g.
// https://registry.modelcontextprotocol.io). base must be https (http only
// for loopback, for tests and local registries).
func New(base string, opts Options) (*Client, error) {
	base = strings.TrimRight(strings.TrimSpace(base), "/")
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname()))) {
		return nil, fmt.Errorf("registry URL %q: use https://host (http only for localhost)", base)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("registry URL %q: no query, fragment or credentials, just https://host[/path]", base)
	}
	c := &Client{base: base, name: opts.Name, http: opts.HTTPClient, timeout: opts.Timeout, ua: opts.UserAgent}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: c.timeout}
	}
	if c.name == "" {
		c.name = u.Host
	}
	if c.ua == "" {
		c.ua = "keyport"
	}
	return c, nil
}

// NewFromCatalog returns a client per enabled registry of the catalog (the
// official one included unless disabled there).
func NewFromCatalog(c *catalog.Catalog, opts Options) ([]*Client, error) {
	var out []*Client
	for _, r := range c.RegistrySources() {
		o := opts
		o.Name = r.Name
		cl, err := New(r.URL, o)
		if err != nil {
			return nil, fmt.Errorf("registries: %s: %w", r.Name, err)
		}
		out = append(out, cl)
	}
	return out, nil
}

// Name is the registry's display name.
func (c *Client) Name() string { return c.name }

// Base is the registry's base URL.
func (c *Client) Base() string { return c.base }

// ListOptions select a page of servers.
type ListOptions struct {
	Search string // substring of the name (or description), case-insensitive
	Limit  int    // page size asked, 1-100; 0 means DefaultLimit
	Cursor string // from a previous Page.NextCursor
	// All keeps every entry: older versions, deprecated or deleted ones,
	// and entries without a streamable-http remote.
	All bool
}

// Page is one page of a listing.
type Page struct {
	Entries    []Entry
	NextCursor string // "" on the last page
	// Skipped counts entries of the page left out by the default filter.
	Skipped int
}

// List fetches one page.
func (c *Client) List(ctx context.Context, o ListOptions) (*Page, error) {
	q := url.Values{}
	if o.Search != "" {
		q.Set("search", o.Search)
	}
	limit := o.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	q.Set("limit", strconv.Itoa(min(limit, 100)))
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	u := c.base + "/v0.1/servers?" + q.Encode()
	body, err := c.get(ctx, u)
	if err != nil {
		return nil, err
	}
	l, err := DecodeList(body)
	if err != nil {
		return nil, c.errorf(u, "%w", err)
	}
	p := &Page{NextCursor: l.Metadata.NextCursor}
	for _, e := range l.Servers {
		if o.All || (e.LatestActive() && len(e.StreamableRemotes()) > 0) {
			p.Entries = append(p.Entries, e)
		} else {
			p.Skipped++
		}
	}
	return p, nil
}

// maxPages bounds Search, whatever cursors a registry returns.
const maxPages = 50

// Search follows the pages of a listing until it has max entries (0: no
// limit) or the registry has no more.
func (c *Client) Search(ctx context.Context, o ListOptions, max int) ([]Entry, error) {
	var out []Entry
	seen := map[string]bool{}
	for range maxPages {
		p, err := c.List(ctx, o)
		if err != nil {
			return out, err
		}
		out = append(out, p.Entries...)
		if max > 0 && len(out) >= max {
			return out[:max], nil
		}
		if p.NextCursor == "" || seen[p.NextCursor] {
			return out, nil
		}
		seen[p.NextCursor] = true
		o.Cursor = p.NextCursor
	}
	return out, nil
}

// Latest fetches the latest version of the server called name (reverse-DNS,
// e.g. "io.github.user/remote-weather").
func (c *Client) Latest(ctx context.Context, name string) (*Entry, error) {
	if name == "" || strings.ContainsAny(name, " \t\r\n") {
		return nil, fmt.Errorf("registry server name %q: give the full name, e.g. io.github.user/server", name)
	}
	u := c.base + "/v0.1/servers/" + url.PathEscape(name) + "/versions/latest"
	body, err := c.get(ctx, u)
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.Code == http.StatusNotFound {
			return nil, fmt.Errorf("registry %s: %q: %w", c.name, name, ErrNotFound)
		}
		return nil, err
	}
	e, err := DecodeEntry(body)
	if err != nil {
		return nil, c.errorf(u, "%w", err)
	}
	return e, nil
}

// StatusError is an HTTP error answer from a registry.
type StatusError struct {
	Code        int
	ContentType string
	Detail      string // the registry's JSON error message, if any
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("HTTP %d %s", e.Code, http.StatusText(e.Code))
	if e.Detail != "" {
		msg += ": " + e.Detail
	} else if e.ContentType != "" && e.ContentType != "application/json" {
		msg += " (a " + e.ContentType + " page, not the registry API: a proxy or gateway error?)"
	}
	return msg
}

// get fetches u and returns its body, or an error naming the registry and u.
func (c *Client) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, c.errorf(u, "%v", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.errorf(u, "%s", describeNetError(err, c.timeout))
	}
	defer resp.Body.Close()
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if resp.StatusCode != http.StatusOK {
		se := &StatusError{Code: resp.StatusCode, ContentType: ct}
		if ct == "application/json" || ct == "application/problem+json" {
			se.Detail = errorDetail(body)
		}
		return nil, c.errorf(u, "%w", se)
	}
	if rerr != nil {
		return nil, c.errorf(u, "reading the response: %s", describeNetError(rerr, c.timeout))
	}
	if len(body) > maxBody {
		return nil, c.errorf(u, "response larger than %d MiB", maxBody>>20)
	}
	if ct != "" && ct != "application/json" && !strings.HasSuffix(ct, "+json") {
		return nil, c.errorf(u, "got %s, not JSON: is this an MCP Registry v0.1 endpoint?", ct)
	}
	return body, nil
}

func (c *Client) errorf(u, format string, args ...any) error {
	return fmt.Errorf("registry %s: GET %s: %w", c.name, u, fmt.Errorf(format, args...))
}

// errorDetail extracts a message from {"error": "..."} or a problem+json
// body ({"title", "detail"}).
func errorDetail(body []byte) string {
	var e struct {
		Error  string `json:"error"`
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	if decode(body, &e) != nil {
		return ""
	}
	msg := e.Error
	if msg == "" {
		msg = strings.TrimSpace(e.Title + ": " + e.Detail)
		msg = strings.Trim(msg, ": ")
	}
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return msg
}

func describeNetError(err error, timeout time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Sprintf("no answer within %v (the registry is slow or unreachable; try again)", timeout)
	}
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	return err.Error()
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Result is an entry found in one of several registries.
type Result struct {
	Registry *Client
	Entry    Entry
}

// SearchAll searches every registry at once and returns the results in
// registry order. A registry that fails does not hide the others' results:
// its error is joined into err.
func SearchAll(ctx context.Context, clients []*Client, o ListOptions, maxPerRegistry int) ([]Result, error) {
	results := make([][]Entry, len(clients))
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() { results[i], errs[i] = c.Search(ctx, o, maxPerRegistry) })
	}
	wg.Wait()
	var out []Result
	for i, c := range clients {
		for _, e := range results[i] {
			out = append(out, Result{Registry: c, Entry: e})
		}
	}
	return out, errors.Join(errs...)
}
