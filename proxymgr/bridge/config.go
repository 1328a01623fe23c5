package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Config configures a bridge between a stdio MCP client and one
// streamable-HTTP MCP endpoint.
type Config struct {
	// Name names the server in the messages the client sees
	// ("NAME unreachable: ..."). Empty means the URL's host.
	Name string

	// URL is the streamable-HTTP MCP endpoint, http or https.
	URL string

	// Header, if set, is called before every HTTP request to the endpoint
	// and its headers are added to the request (credentials, for example).
	// Its error aborts that request: a client request is answered with a
	// JSON-RPC -32603 error carrying the error's text, so the text should
	// say what to do ("sign in to NAME in Keyport").
	Header func(ctx context.Context) (http.Header, error)

	// In and Out carry the newline-delimited JSON-RPC stream of the stdio
	// client: usually os.Stdin and os.Stdout. Nothing but MCP messages is
	// ever written to Out.
	In  io.Reader
	Out io.Writer

	// Logger receives the bridge's logs; nil discards them. It must not
	// write to Out.
	Logger *slog.Logger

	// AutoReconnect keeps the bridge usable across upstream restarts and
	// network drops: it retries with backoff, re-initializes a lost session
	// with the client's cached initialize request, and restores the
	// client's log level and resource subscriptions. When false, the bridge
	// still retries until the first session is established, but once the
	// connection is lost every request is answered with an error telling
	// the user to restart the client.
	AutoReconnect bool

	// HTTPClient sends the requests; nil means a client tuned for
	// long-lived streams (no overall timeout, keep-alive pool).
	HTTPClient *http.Client

	// RequestWait bounds how long a request waits for the server while it
	// is unreachable or the bridge is reconnecting, before it is answered
	// with an error. Zero means 10 seconds.
	RequestWait time.Duration

	// MaxMessageSize bounds one JSON-RPC message in either direction.
	// Zero means DefaultMaxMessageSize.
	MaxMessageSize int

	// MinBackoff and MaxBackoff bound the delay between reconnection
	// attempts. Zero means 100 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
}

// Default values of the Config fields.
const (
	DefaultRequestWait = 10 * time.Second
	DefaultMinBackoff  = 100 * time.Millisecond
	DefaultMaxBackoff  = 5 * time.Second
)

// check validates c and fills its defaults.
func (c *Config) check() error {
	if c.URL == "" {
		return errors.New("bridge: no server URL: set the MCP endpoint URL (http:// or https://)")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("bridge: invalid server URL: %w", redactErr(err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("bridge: server URL %q must be an absolute http:// or https:// URL", redactURL(c.URL))
	}
	if c.In == nil || c.Out == nil {
		return errors.New("bridge: In and Out must be set (the client's stdio)")
	}
	if c.Name == "" {
		c.Name = u.Host
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = NewHTTPClient()
	}
	if c.RequestWait <= 0 {
		c.RequestWait = DefaultRequestWait
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	return nil
}

// NewHTTPClient is the client a bridge uses when Config.HTTPClient is nil,
// tuned for MCP: no overall timeout (responses may be long-lived event
// streams), bounded connection set-up, and enough idle connections for
// concurrent requests. Callers that wrap its transport start from it.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConns = 64
	t.MaxIdleConnsPerHost = 32
	return &http.Client{Transport: t}
}

// redactURL drops the parts of a URL that may hold secrets (user info,
// query, fragment) so it can appear in logs and messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	out := r.String()
	if u.RawQuery != "" {
		out += "?…"
	}
	return out
}

// redactErr rewrites *url.Error values so their text carries a redacted URL.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, redactURL(ue.URL), ue.Err)
	}
	return err
}
