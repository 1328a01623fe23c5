package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// HTTP plumbing: requests with the MCP transport headers, and telling
// whether a failed request may be sent again.

// sendTrace follows one HTTP request far enough to tell whether a failed
// request can safely be sent again.
type sendTrace struct {
	wrote, reused, gotByte atomic.Bool
	wroteAt                atomic.Int64 // UnixNano
	onWrote                func()
}

// staleWindow is how soon after the request was written a hang-up counts
// as the server having closed the idle connection, rather than having
// failed while processing the request.
const staleWindow = 50 * time.Millisecond

func (t *sendTrace) with(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { t.reused.Store(i.Reused) },
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err != nil {
				return // not written
			}
			t.wroteAt.Store(time.Now().UnixNano())
			t.wrote.Store(true)
			if t.onWrote != nil {
				t.onWrote()
			}
		},
		GotFirstResponseByte: func() { t.gotByte.Store(true) },
	})
}

// unsent reports whether a request that failed with err can be sent again:
// it never left, or it went out on a reused keep-alive connection that the
// server had already closed: the server hung up right after the write
// without a byte of response, the race every HTTP client meets when a
// server restarts or drops idle connections. Like browsers, the bridge
// resends in that second case, once per request (*once); a later hang-up
// may mean the server was processing the request, so it is not resent.
func (t *sendTrace) unsent(err error, once *bool) bool {
	if !t.wrote.Load() {
		return true
	}
	// The transport resends a POST by itself only when its first attempt
	// was not processed (nothing written, or the idle connection was
	// closed); if that resend could not even connect, nothing was sent.
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	if *once || !t.reused.Load() || t.gotByte.Load() ||
		time.Since(time.Unix(0, t.wroteAt.Load())) > staleWindow {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || strings.Contains(err.Error(), "server closed idle connection") {
		*once = true
		return true
	}
	return false
}

// newRequest builds an HTTP request to the endpoint carrying m (nil for GET
// and DELETE) with the configured headers and the MCP transport headers.
func (b *bridge) newRequest(ctx context.Context, method string, sess *session, m *message) (*http.Request, error) {
	var body io.Reader
	if m != nil {
		body = bytes.NewReader(m.raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.cfg.URL, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.cfg.Name, redactErr(err))
	}
	if b.cfg.Header != nil {
		extra, err := b.cfg.Header(ctx)
		if err != nil {
			return nil, err
		}
		for k, vs := range extra {
			req.Header[http.CanonicalHeaderKey(k)] = vs
		}
	}
	switch method {
	case http.MethodPost:
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	case http.MethodGet:
		req.Header.Set("Accept", "text/event-stream")
	}
	version := ""
	if m != nil {
		version = metaProtocolVersion(m.params)
	}
	switch {
	case version != "":
	case m != nil && m.method == "initialize":
		// The version the client asks for, as go-sdk's own HTTP client
		// sends it: servers may refuse an initialize without the header.
		version, _ = unquote(field(m.params, "protocolVersion"))
	case sess != nil:
		version = sess.version
	}
	if version != "" {
		req.Header.Set(hdrProtocolVersion, version)
	}
	if sess != nil && sess.id != "" && version < version20260728 && !(m != nil && m.method == "initialize") {
		req.Header.Set(hdrSessionID, sess.id)
	}
	if m != nil && m.method != "" && version >= version20260728 {
		b.toolsMu.Lock()
		setStandardHeaders(req.Header, m, &b.tools, b.rawName.Load())
		b.toolsMu.Unlock()
	}
	return req, nil
}

// get opens a GET event stream on the session (resuming after lastID).
func (b *bridge) get(ctx context.Context, sess *session, lastID string) (*http.Response, error) {
	req, err := b.newRequest(ctx, http.MethodGet, sess, nil)
	if err != nil {
		return nil, err
	}
	if lastID != "" {
		req.Header.Set(hdrLastEventID, lastID)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, redactErr(err)
	}
	return resp, nil
}

func mediaType(h http.Header) string {
	t, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return t
}

// finishStream reads what follows the response on an event stream (the
// server normally ends the stream right after it) so the connection can be
// reused, giving up after a second.
func finishStream(body io.ReadCloser) {
	t := time.AfterFunc(time.Second, func() { body.Close() })
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 1<<20))
	t.Stop()
	body.Close()
}

// drain reads a little of an unwanted body so the connection can be reused.
func drain(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10)) }
