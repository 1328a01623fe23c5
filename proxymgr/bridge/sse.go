package bridge

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"
)

// sseEvent is one dispatched server-sent event.
type sseEvent struct {
	name string // the event type; "" means "message"
	data []byte // data lines joined with "\n"; may be empty (a priming event)
}

// errEventTooLarge fails a stream whose event exceeds the size limit.
var errEventTooLarge = errors.New("server-sent event too large")

// sseReader parses a text/event-stream body as the WHATWG HTML standard
// specifies: lines end in CRLF, LF or CR; a blank line dispatches the event;
// lines starting with ':' are comments; unknown fields are ignored.
type sseReader struct {
	r         *bufio.Reader
	max       int
	line      []byte
	pendingCR bool // the last line ended in CR: a following LF belongs to it
	started   bool

	// LastID is the last event ID seen (the stream's resumption point);
	// Retry is the reconnection delay the server asked for, 0 if none.
	LastID string
	Retry  time.Duration
}

// readerPool recycles the buffers of event streams: a sequential client
// opens one stream per request.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

func newSSEReader(r io.Reader, max int) *sseReader {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	return &sseReader{r: br, max: max}
}

// release returns the reader's buffer to the pool; s must not be used after.
func (s *sseReader) release() {
	if s.r != nil {
		s.r.Reset(nil)
		readerPool.Put(s.r)
		s.r = nil
	}
}

// next returns the next dispatched event. Events with no data lines are not
// returned, but their id and retry fields still take effect.
func (s *sseReader) next() (sseEvent, error) {
	var (
		ev      sseEvent
		data    []byte
		hasData bool
	)
	for {
		line, err := s.readLine()
		if err != nil {
			// An event not terminated by a blank line is discarded, as the
			// standard requires.
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if hasData {
				ev.data = data
				return ev, nil
			}
			ev = sseEvent{}
			continue
		}
		if line[0] == ':' {
			continue
		}
		name, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			name, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(name) {
		case "data":
			if len(data)+len(value)+1 > s.max {
				return sseEvent{}, errEventTooLarge
			}
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
		case "event":
			ev.name = string(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				s.LastID = string(value)
			}
		case "retry":
			if n, err := strconv.ParseUint(string(value), 10, 32); err == nil && allDigits(value) {
				s.Retry = time.Duration(n) * time.Millisecond
			}
		}
	}
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// readLine returns the next line without its terminator.
func (s *sseReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		if s.pendingCR {
			// Checked lazily, before the next line, so an event ending in a
			// CR is dispatched without waiting for more input.
			b, err := s.r.Peek(1)
			if err == nil && b[0] == '\n' {
				_, _ = s.r.Discard(1)
			}
			s.pendingCR = false
		}
		if _, err := s.r.Peek(1); err != nil {
			if len(s.line) > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if !s.started {
			s.started = true
			if b, err := s.r.Peek(3); err == nil && string(b) == "\xEF\xBB\xBF" {
				_, _ = s.r.Discard(3) // a leading byte order mark is ignored
				continue
			}
		}
		buf, _ := s.r.Peek(s.r.Buffered())
		i := bytes.IndexAny(buf, "\r\n")
		if i < 0 {
			if len(s.line)+len(buf) > s.max {
				return nil, errEventTooLarge
			}
			s.line = append(s.line, buf...)
			_, _ = s.r.Discard(len(buf))
			continue
		}
		if len(s.line)+i > s.max {
			return nil, errEventTooLarge
		}
		s.line = append(s.line, buf[:i]...)
		s.pendingCR = buf[i] == '\r'
		_, _ = s.r.Discard(i + 1)
		return s.line, nil
	}
}
