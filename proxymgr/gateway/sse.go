package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
)

// Server-sent events as the pass-through reads and writes them
// (passthrough.go): the WHATWG event stream format, events split at blank
// lines, comments dropped.

// sseEvent is one event: its fields as received.
type sseEvent struct {
	name      string
	id        string
	hasID     bool
	retry     string
	data      []byte // the data lines, joined by "\n"
	dataLines int
}

// errEventTooLarge: an event grew past maxPassEvent.
var errEventTooLarge = errors.New("an event of the answer stream is too large")

// sseReader splits a stream into events.
type sseReader struct {
	r    *bufio.Reader
	line []byte // a line longer than the reader's buffer, being read
}

var sseReaders = sync.Pool{New: func() any { return &sseReader{r: bufio.NewReaderSize(nil, 4<<10)} }}

func getSSEReader(body io.Reader) *sseReader {
	s := sseReaders.Get().(*sseReader)
	s.r.Reset(body)
	return s
}

func putSSEReader(s *sseReader) {
	s.r.Reset(nil)
	if cap(s.line) > 64<<10 {
		s.line = nil
	}
	sseReaders.Put(s)
}

// next reads the next event into ev (reusing its data buffer). It
// returns io.EOF at the end of the stream; an event the stream ends in
// the middle of is dropped, as the format says.
func (s *sseReader) next(ev *sseEvent) error {
	*ev = sseEvent{data: ev.data[:0]}
	fields, size := 0, 0
	for {
		line, err := s.readLine()
		if err != nil {
			return err
		}
		size += len(line) + 1
		if size > maxPassEvent {
			return errEventTooLarge
		}
		if len(line) == 0 {
			if fields > 0 {
				return nil
			}
			continue
		}
		if line[0] == ':' {
			continue // a comment
		}
		fields++
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(name) {
		case "data":
			if ev.dataLines > 0 {
				ev.data = append(ev.data, '\n')
			}
			ev.data = append(ev.data, value...)
			ev.dataLines++
		case "event":
			ev.name = string(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				ev.id, ev.hasID = string(value), true
			}
		case "retry":
			if len(value) > 0 && len(bytes.Trim(value, "0123456789")) == 0 {
				ev.retry = string(value)
			}
		}
	}
}

// readLine reads one line without its end ("\n" or "\r\n").
func (s *sseReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		chunk, err := s.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			s.line = append(s.line, chunk...)
			if len(s.line) > maxPassEvent {
				return nil, errEventTooLarge
			}
			continue
		}
		if err != nil {
			return nil, err // a last line without its end is dropped
		}
		line := chunk
		if len(s.line) > 0 {
			s.line = append(s.line, chunk...)
			line = s.line
		}
		line = line[:len(line)-1]
		return bytes.TrimSuffix(line, []byte("\r")), nil
	}
}

// sseOut writes events to a client: the headers with the first one, each
// flushed at once.
type sseOut struct {
	w       http.ResponseWriter
	started bool
	buf     []byte
}

// start sends the headers of an event stream.
func (o *sseOut) start() {
	if o.started {
		return
	}
	o.started = true
	h := o.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-transform")
	o.w.WriteHeader(http.StatusOK)
	_ = http.NewResponseController(o.w).Flush()
}

// event writes one event and flushes it; dataLines 0 writes no data
// field, else data's lines each in one.
func (o *sseOut) event(name, id, retry string, data []byte, dataLines int) error {
	if err := o.write(name, id, retry, data, dataLines); err != nil {
		return err
	}
	return http.NewResponseController(o.w).Flush()
}

// last writes the stream's last event without flushing it: the handler
// returns right after, and net/http sends the event with the end of the
// stream in one write (a flush here would cost the call a second one).
func (o *sseOut) last(name, id, retry string, data []byte, dataLines int) error {
	return o.write(name, id, retry, data, dataLines)
}

// write writes one event into the response's buffer.
func (o *sseOut) write(name, id, retry string, data []byte, dataLines int) error {
	if !o.started {
		o.started = true
		h := o.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache, no-transform")
		o.w.WriteHeader(http.StatusOK)
	}
	b := o.buf[:0]
	if name != "" {
		b = append(append(append(b, "event: "...), name...), '\n')
	}
	if id != "" {
		b = append(append(append(b, "id: "...), id...), '\n')
	}
	if retry != "" {
		b = append(append(append(b, "retry: "...), retry...), '\n')
	}
	if dataLines > 0 {
		for {
			line, rest, more := bytes.Cut(data, []byte("\n"))
			b = append(append(append(b, "data: "...), line...), '\n')
			if !more {
				break
			}
			data = rest
		}
	}
	b = append(b, '\n')
	o.buf = b
	_, err := o.w.Write(b)
	return err
}
