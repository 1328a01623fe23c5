package proxymgr

import (
	"net/http"
	"sync"
)

// A streamGate lets the proxy add an event of its own to an SSE response
// it relays (a session's GET stream, a 2026-era subscriptions/listen
// stream) between the upstream's events, from any goroutine: today the
// notifications/tools/list_changed that tool pinning sends when what a
// client may see changed. It wraps the response writer (wrap), so it sees
// every byte the relay writes and knows whether the stream is between two
// events; an event that cannot go out at once waits for the next boundary.
type streamGate struct {
	p     *Proxy
	event []byte // the SSE event to send

	mu      sync.Mutex
	w       http.ResponseWriter
	ctl     *http.ResponseController
	started bool    // WriteHeader was called
	tail    [4]byte // the last bytes written
	n       int     // how many of tail are set
	queued  bool    // an event waits for a boundary
	closed  bool    // the handler returned: never write again
}

// wrap returns w writing through g (w itself when g is nil).
func (g *streamGate) wrap(w http.ResponseWriter) http.ResponseWriter {
	if g == nil {
		return w
	}
	g.mu.Lock()
	g.w, g.ctl = w, http.NewResponseController(w)
	g.mu.Unlock()
	return &gatedWriter{g: g}
}

// close stops g from writing; the handler is returning (nil: nothing).
func (g *streamGate) close() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// inject sends g's event now if the stream is between events, else at the
// next boundary. Several injections before then send one event.
func (g *streamGate) inject() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.w == nil {
		return
	}
	g.queued = true
	g.sendLocked()
}

// sendLocked writes the queued event if the stream is at a boundary.
func (g *streamGate) sendLocked() {
	if !g.queued || g.closed || !g.started || !g.atBoundary() {
		return
	}
	g.queued = false
	n, err := g.w.Write(g.event)
	g.p.bytesOut.Add(int64(n))
	g.note(g.event[:n])
	if err == nil {
		_ = g.ctl.Flush()
	}
}

// note remembers the tail of what was written.
func (g *streamGate) note(b []byte) {
	for _, c := range b[max(0, len(b)-len(g.tail)):] {
		copy(g.tail[:], g.tail[1:])
		g.tail[len(g.tail)-1] = c
		g.n = min(g.n+1, len(g.tail))
	}
}

// atBoundary reports whether what was written ends an event: nothing yet,
// or a line terminator (CRLF, CR or LF) that ends an empty line.
func (g *streamGate) atBoundary() bool {
	t := g.tail[len(g.tail)-g.n:]
	if len(t) == 0 {
		return true
	}
	isEOL := func(c byte) bool { return c == '\n' || c == '\r' }
	switch {
	case len(t) >= 2 && t[len(t)-2] == '\r' && t[len(t)-1] == '\n':
		t = t[:len(t)-2]
	case isEOL(t[len(t)-1]):
		t = t[:len(t)-1]
	default:
		return false
	}
	return len(t) > 0 && isEOL(t[len(t)-1])
}

// gatedWriter is the response writer the relay writes through.
type gatedWriter struct{ g *streamGate }

func (w *gatedWriter) Header() http.Header { return w.g.w.Header() }

func (w *gatedWriter) WriteHeader(code int) {
	g := w.g
	g.mu.Lock()
	defer g.mu.Unlock()
	g.w.WriteHeader(code)
	g.started = code/100 == 2
}

func (w *gatedWriter) Write(b []byte) (int, error) {
	g := w.g
	g.mu.Lock()
	defer g.mu.Unlock()
	n, err := g.w.Write(b)
	g.note(b[:n])
	return n, err
}

// FlushError flushes, then sends a queued event if the stream is at a
// boundary now (http.ResponseController calls it).
func (w *gatedWriter) FlushError() error {
	g := w.g
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.ctl.Flush()
	if err == nil {
		g.sendLocked()
	}
	return err
}

func (w *gatedWriter) Unwrap() http.ResponseWriter { return w.g.w }
