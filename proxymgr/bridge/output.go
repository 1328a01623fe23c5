package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// What the client sees: the output stream and the messages of errors.

// Messages the client sees.

func (b *bridge) unreachable(err error) error {
	if err == nil {
		err = errors.New("no answer")
	}
	return fmt.Errorf("%s unreachable: %v; Keyport keeps retrying, try again in a moment", b.cfg.Name, err)
}

func (b *bridge) downError(err error) error {
	return fmt.Errorf("lost the connection to %s (%v) and automatic reconnection is off: restart your MCP client to reconnect",
		b.cfg.Name, err)
}

func (b *bridge) lostInFlight(c *call, err error) error {
	return fmt.Errorf("%s: the connection broke while %q was in flight (%v); it may or may not have completed, retry if that is safe",
		b.cfg.Name, c.method, err)
}

// errorResponse builds a JSON-RPC error response (id nil means null).
func errorResponse(id []byte, code int, text string) []byte {
	if id == nil {
		id = []byte("null")
	}
	msg, _ := json.Marshal(text)
	out := make([]byte, 0, 64+len(id)+len(msg))
	out = append(out, `{"jsonrpc":"2.0","id":`...)
	out = append(out, id...)
	out = append(out, `,"error":{"code":`...)
	out = strconv.AppendInt(out, int64(code), 10)
	out = append(out, `,"message":`...)
	out = append(out, msg...)
	return append(out, "}}"...)
}

func kindOf(m *message) string {
	switch {
	case m.isRequest():
		return "request"
	case m.isNotification():
		return "notification"
	}
	return "response"
}

// output writes messages to the client, one per line, never interleaved.
type output struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	err    error
	broken chan struct{}
}

func newOutput(w io.Writer) *output { return &output{w: w, broken: make(chan struct{})} }

func (o *output) write(msg []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return
	}
	o.buf = append(o.buf[:0], msg...)
	// A message is one line: newlines in a valid JSON text are whitespace
	// between tokens, so they can become spaces.
	if bytes.IndexByte(msg, '\n') >= 0 || bytes.IndexByte(msg, '\r') >= 0 {
		for i, c := range o.buf {
			if c == '\n' || c == '\r' {
				o.buf[i] = ' '
			}
		}
	}
	o.buf = append(o.buf, '\n')
	_, err := o.w.Write(o.buf)
	if cap(o.buf) > 1<<20 {
		o.buf = nil
	}
	if err != nil {
		o.err = err
		close(o.broken)
	}
}
