package proxymgr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"keyport/proxymgr/peercred"
)

// In-process requests. A Keyport profile endpoint (proxymgr/gateway) that
// runs in the same process as a server's proxy reaches that proxy without
// a loopback TCP connection: LocalTransport hands a request for
// http://127.0.0.1:PORT/... to the socket this process serves on that
// port, exactly where a connection to that port would arrive, and every
// stage of the proxy runs on it as on any request (the Host, Origin and
// token checks, the request gate, policy, pins, redaction, the audit log).
// Requests for any other address, or for a proxy that is stopping, go
// through the base transport (over loopback, as before).
//
// The same-user stage. A request that arrives this way comes from this
// process, hence from the OS user the proxy belongs to, and carries no
// connection to look up: the socket's handler is called with a context
// holding inProcessKey, which peerVerdict takes for the same user. Only
// this file sets the key (it is unexported), and requests from the
// network get their contexts from net/http, so no client can claim it: a
// request over TCP is checked by its connection as before.

// inProcessKey marks the context of a request LocalTransport delivered.
type inProcessKey struct{}

// inProcessVerdict is the same-user verdict of an in-process request.
var inProcessVerdict = peercred.Verdict{Kind: peercred.Same, UID: os.Getuid(), Owner: "this process"}

// localSockets are the sockets this process listens on, by port.
var localSockets sync.Map // int -> *socket

// inProcessServed counts the requests LocalTransport served in process.
var inProcessServed atomic.Int64

// InProcessRequests is how many requests this process's proxies were
// handed in process (LocalTransport) rather than over a connection.
func InProcessRequests() int64 { return inProcessServed.Load() }

// register makes s reachable in process (it is serving on its port).
func (s *socket) register() {
	localSockets.Store(s.port(), s)
}

// unregister makes s unreachable in process (it is closing).
func (s *socket) unregister() {
	localSockets.CompareAndDelete(s.port(), s)
}

func (s *socket) port() int {
	if a, ok := s.ln.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return -1
}

// LocalTransport returns an http.RoundTripper that serves requests for
// http://127.0.0.1:PORT in process when this process runs the proxy on
// PORT, and sends every other request through base.
func LocalTransport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &localTransport{base: base}
}

type localTransport struct{ base http.RoundTripper }

func (t *localTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if s := localSocket(req.URL); s != nil {
		return s.roundTrip(req)
	}
	return t.base.RoundTrip(req)
}

// CloseIdleConnections closes the base transport's idle connections.
func (t *localTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// localSocket is the socket of this process that u reaches, if it is
// serving.
func localSocket(u *url.URL) *socket {
	if u == nil || u.Scheme != "http" {
		return nil
	}
	host, p, err := net.SplitHostPort(u.Host)
	if err != nil || host != "127.0.0.1" {
		return nil
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return nil
	}
	v, ok := localSockets.Load(port)
	if !ok {
		return nil
	}
	s := v.(*socket)
	if s.closing.Load() {
		return nil
	}
	return s
}

// maxLocalBuffer is how much of an answer waits for its reader before the
// handler's writes block (a slow reader slows the handler, as over TCP).
const maxLocalBuffer = 256 << 10

// roundTrip serves req on s's handler in a goroutine of its own and
// returns the response as soon as the handler sent its headers; the body
// streams as the handler writes and flushes.
func (s *socket) roundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	in := &http.Request{
		Method:        req.Method,
		URL:           &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery},
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        req.Header.Clone(),
		Body:          req.Body,
		ContentLength: req.ContentLength,
		Host:          req.Host,
		RemoteAddr:    "in-process",
		RequestURI:    req.URL.RequestURI(),
	}
	if in.Header == nil {
		in.Header = http.Header{}
	}
	if in.Host == "" {
		in.Host = req.URL.Host
	}
	if in.Body == nil {
		in.Body = http.NoBody
	} else if in.ContentLength == 0 && in.Body != http.NoBody {
		in.ContentLength = -1
	}
	in = in.WithContext(context.WithValue(ctx, inProcessKey{}, true))
	inProcessServed.Add(1)
	w := newLocalResponse(ctx, cancel)
	go func() {
		defer func() {
			var err error
			if v := recover(); v != nil {
				err = fmt.Errorf("%w: %v", errLocalAbort, v)
				if v != http.ErrAbortHandler && s.srv.ErrorLog != nil {
					s.srv.ErrorLog.Printf("http: panic serving an in-process request: %v", v)
				}
			}
			w.finish(err)
			if req.Body != nil {
				req.Body.Close()
			}
		}()
		s.ServeHTTP(w, in)
	}()
	select {
	case <-w.ready:
	case <-req.Context().Done():
		w.Close()
		return nil, req.Context().Err()
	}
	w.mu.Lock()
	status, header := w.status, w.sentHeader
	w.mu.Unlock()
	resp := &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          w,
		ContentLength: -1,
		Request:       req,
	}
	if cl, err := strconv.ParseInt(header.Get("Content-Length"), 10, 64); err == nil && cl >= 0 {
		resp.ContentLength = cl
	}
	if req.Method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified {
		resp.Body = http.NoBody
		w.Close()
	}
	return resp, nil
}

// errLocalAbort is what the reader of an answer gets when its handler
// panicked (http.ErrAbortHandler: the handler broke the answer off).
var errLocalAbort = errors.New("the in-process handler aborted its answer")

// errLocalClosed is what the handler gets when it writes an answer its
// reader closed.
var errLocalClosed = errors.New("the in-process client closed the answer")

// localResponse is both ends of an in-process answer: the
// http.ResponseWriter the handler writes and the body the client reads.
// Writes are buffered until the handler flushes, the buffer passes 4 KiB
// or the handler returns (as net/http's server sends them), and block
// while maxLocalBuffer bytes wait for the reader.
type localResponse struct {
	ctx    context.Context
	cancel context.CancelFunc
	header http.Header
	ready  chan struct{} // closed when the headers are sent

	mu         sync.Mutex
	cond       sync.Cond
	buf        bytes.Buffer // written and sent, not read yet
	pending    int          // bytes of buf not flushed yet
	status     int
	sent       bool
	sentHeader http.Header
	done       bool  // the handler returned
	err        error // why the answer broke off (nil: complete)
	closed     bool  // the client closed the body
	stopCtx    func() bool
}

func newLocalResponse(ctx context.Context, cancel context.CancelFunc) *localResponse {
	w := &localResponse{ctx: ctx, cancel: cancel, header: http.Header{}, ready: make(chan struct{})}
	w.cond.L = &w.mu
	w.stopCtx = context.AfterFunc(ctx, func() {
		w.mu.Lock()
		w.cond.Broadcast()
		w.mu.Unlock()
	})
	return w
}

// Header implements http.ResponseWriter.
func (w *localResponse) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter.
func (w *localResponse) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeHeaderLocked(code)
}

func (w *localResponse) writeHeaderLocked(code int) {
	if w.status != 0 || code < 200 {
		return // informational answers are not relayed
	}
	w.status = code
}

// Write implements http.ResponseWriter.
func (w *localResponse) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeHeaderLocked(http.StatusOK)
	for w.buf.Len() >= maxLocalBuffer && !w.closed && w.ctx.Err() == nil {
		w.cond.Wait()
	}
	if w.closed || w.ctx.Err() != nil {
		return 0, errLocalClosed
	}
	w.buf.Write(p)
	w.pending += len(p)
	if w.pending >= 4<<10 {
		w.flushLocked()
	}
	return len(p), nil
}

// Flush implements http.Flusher.
func (w *localResponse) Flush() { _ = w.FlushError() }

// FlushError is Flush for http.ResponseController.
func (w *localResponse) FlushError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeHeaderLocked(http.StatusOK)
	if w.closed || w.ctx.Err() != nil {
		return errLocalClosed
	}
	w.flushLocked()
	return nil
}

// flushLocked sends the headers (once) and makes what was written
// readable.
func (w *localResponse) flushLocked() {
	if !w.sent {
		w.sent = true
		w.sentHeader = w.header.Clone()
		close(w.ready)
	}
	w.pending = 0
	w.cond.Broadcast()
}

// finish ends the answer: the handler returned (err nil) or broke off.
func (w *localResponse) finish(err error) {
	w.mu.Lock()
	w.writeHeaderLocked(http.StatusOK)
	w.done, w.err = true, err
	w.flushLocked()
	w.mu.Unlock()
	w.stopCtx()
}

// Read implements io.Reader for the client.
func (w *localResponse) Read(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if n := w.buf.Len() - w.pending; n > 0 {
			if len(p) > n {
				p = p[:n]
			}
			n, _ = w.buf.Read(p)
			w.cond.Broadcast()
			return n, nil
		}
		switch {
		case w.closed:
			return 0, errLocalClosed
		case w.done && w.err != nil:
			return 0, w.err
		case w.done:
			return 0, io.EOF
		case w.ctx.Err() != nil:
			return 0, w.ctx.Err()
		}
		w.cond.Wait()
	}
}

// Close implements io.Closer for the client: the handler's context ends
// and its writes fail.
func (w *localResponse) Close() error {
	w.mu.Lock()
	w.closed = true
	w.buf.Reset()
	w.pending = 0
	w.cond.Broadcast()
	w.mu.Unlock()
	w.cancel()
	return nil
}
