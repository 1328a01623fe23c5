package proxymgr

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"keyport/proxymgr/redact"
)

// This file is the last stage of every answer: whatever the proxy sends a
// client — the server's JSON and event streams, its error pages quoted in
// the proxy's own JSON-RPC errors, anything else — passes through a
// redactWriter, which removes every credential the proxy injected towards
// the server (p.secrets: what Config.Credentials returned, kept a while
// after a refresh) and the local token. The client is an AI model: what
// reaches it may end up anywhere.

// redactWarnEvery limits the warning a proxy logs when it redacts.
const redactWarnEvery = time.Minute

// redactWriter wraps a client's ResponseWriter for one request.
type redactWriter struct {
	http.ResponseWriter
	p      *Proxy
	stream redact.Writer // streamed bodies: only a possible secret's beginning waits

	wroteHeader bool
	// A body with a Content-Length (the proxy's own JSON answers, relayed
	// JSON) is gathered whole, redacted, and sent with its new length.
	deferred bool
	status   int
	want     int
	body     []byte
	counted  int64 // stream redactions already counted
}

var redactWriterPool = sync.Pool{New: func() any { return new(redactWriter) }}

// redactAnswers returns w wrapped; finish must be called when the handler
// is done with it.
func (p *Proxy) redactAnswers(w http.ResponseWriter) *redactWriter {
	rw := redactWriterPool.Get().(*redactWriter)
	body := rw.body[:0]
	stream := rw.stream
	*rw = redactWriter{ResponseWriter: w, p: p, body: body, stream: stream}
	rw.stream.Reset(w, p.secrets)
	return rw
}

// finish sends what is still held (deciding it as the end of the answer)
// and recycles rw.
func (rw *redactWriter) finish() {
	if rw.deferred {
		rw.sendDeferred()
	} else {
		_ = rw.stream.Close()
		rw.count()
	}
	if cap(rw.body) > 64<<10 {
		rw.body = nil
	}
	rw.ResponseWriter, rw.p = nil, nil
	rw.stream.Reset(nil, nil)
	redactWriterPool.Put(rw)
}

// Unwrap gives http.ResponseController the connection's writer.
func (rw *redactWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

func (rw *redactWriter) WriteHeader(code int) {
	if rw.wroteHeader {
		return
	}
	rw.wroteHeader = true
	rw.redactHeaders()
	if code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified && rw.p.secrets.Matcher() != nil {
		if n, err := strconv.Atoi(rw.Header().Get("Content-Length")); err == nil && n > 0 {
			rw.deferred, rw.status, rw.want = true, code, n
			return
		}
	}
	rw.ResponseWriter.WriteHeader(code)
}

// redactHeaders removes injected secrets from the answer's header values:
// a server or gateway that echoes the Authorization it received in a
// header of its own (X-Debug-Auth, a quoted request in a Link or Warning)
// must not hand it to the client either.
func (rw *redactWriter) redactHeaders() {
	m := rw.p.secrets.Matcher()
	if m == nil {
		return
	}
	found := 0
	for _, vs := range rw.Header() {
		for i, v := range vs {
			if len(v) < redact.MinLen { // shorter than any secret the set holds
				continue
			}
			if out, n := m.Replace([]byte(v)); n > 0 {
				vs[i], found = string(out), found+n
			}
		}
	}
	if found > 0 {
		rw.p.redacted(int64(found))
	}
}

func (rw *redactWriter) Write(b []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.deferred {
		if len(rw.body) == 0 && len(b) >= rw.want { // the whole body at once, as writeJSON and relayJSON write it
			rw.send(b)
			return len(b), nil
		}
		rw.body = append(rw.body, b...)
		if len(rw.body) >= rw.want {
			rw.sendDeferred()
		}
		return len(b), nil
	}
	n, err := rw.stream.Write(b)
	if rw.stream.Found() != rw.counted {
		rw.count()
	}
	return n, err
}

// ReadFrom keeps io.Copy from allocating a buffer per answer.
func (rw *redactWriter) ReadFrom(src io.Reader) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	return io.CopyBuffer(writerOnly{rw}, src, *bp)
}

// writerOnly hides ReadFrom from io.CopyBuffer (which would call it again).
type writerOnly struct{ io.Writer }

// FlushError sends what has been written. A streamed body keeps back the
// bytes that may begin a secret (never the end of an event), a gathered
// one everything until it is complete.
func (rw *redactWriter) FlushError() error {
	if rw.deferred {
		return nil
	}
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(rw.ResponseWriter).Flush()
}

// Flush implements http.Flusher.
func (rw *redactWriter) Flush() { _ = rw.FlushError() }

// sendDeferred sends the gathered body.
func (rw *redactWriter) sendDeferred() {
	rw.send(rw.body)
	rw.body = rw.body[:0]
}

// send redacts a whole body with a Content-Length and sends it with its
// new length.
func (rw *redactWriter) send(body []byte) {
	rw.deferred = false
	out, n := rw.p.secrets.Matcher().Replace(body)
	if n > 0 {
		rw.p.redacted(int64(n))
	}
	rw.Header().Set("Content-Length", strconv.Itoa(len(out)))
	rw.ResponseWriter.WriteHeader(rw.status)
	_, _ = rw.ResponseWriter.Write(out)
}

func (rw *redactWriter) count() {
	if f := rw.stream.Found(); f != rw.counted {
		rw.p.redacted(f - rw.counted)
		rw.counted = f
	}
}

// redacted counts n secrets removed from answers and warns, at most once
// a minute, naming the server (never the value).
func (p *Proxy) redacted(n int64) {
	total := p.redactions.Add(n)
	now := time.Now().UnixNano()
	last := p.redactWarned.Load()
	if now-last >= int64(redactWarnEvery) && p.redactWarned.CompareAndSwap(last, now) {
		p.log.Warn("the server's answer held a credential Keyport injected; Keyport removed it before the client saw it",
			"redactions", total)
	}
	p.changed(false)
}

// bodyLimitWriter is the connection's own writer under w, for
// http.MaxBytesReader (which tells it to close the connection after an
// oversized body).
func bodyLimitWriter(w http.ResponseWriter) http.ResponseWriter {
	if rw, ok := w.(*redactWriter); ok {
		return rw.ResponseWriter
	}
	return w
}
