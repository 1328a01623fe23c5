package proxymgr

import (
	"bytes"
	"sync"
)

// This file splits a server-sent-events byte stream into events as the bytes
// arrive, without changing them: the proxy forwards every byte as received
// and only uses the scanner to know where events start and end and what
// their data is (https://html.spec.whatwg.org/multipage/server-sent-events.html).

// sseEvent is a complete event as seen by the scanner.
type sseEvent struct {
	data     []byte // the data lines joined by \n (nil if none)
	hasData  bool
	overflow bool // the data was larger than the scanner's limit and is incomplete
}

// sseScanner finds event boundaries in an SSE stream fed in arbitrary pieces.
type sseScanner struct {
	maxData int // the largest data the scanner keeps per event

	inEvent  bool // a byte of the current event has been seen
	data     []byte
	hasData  bool
	overflow bool

	line     []byte // the current line, up to maxData+len("data: ") bytes
	lineLen  int    // the current line's full length
	lineOver bool
	afterCR  bool // the previous byte was a CR ending a line
}

func newSSEScanner(maxData int) *sseScanner { return &sseScanner{maxData: maxData} }

var scannerPool = sync.Pool{New: func() any { return new(sseScanner) }}

// getSSEScanner returns a reset scanner from the pool; putSSEScanner gives
// it back.
func getSSEScanner(maxData int) *sseScanner {
	s := scannerPool.Get().(*sseScanner)
	line, data := s.line[:0], s.data[:0]
	*s = sseScanner{maxData: maxData, line: line, data: data}
	return s
}

func putSSEScanner(s *sseScanner) {
	if cap(s.line) > 64<<10 || cap(s.data) > 64<<10 {
		return
	}
	scannerPool.Put(s)
}

// feed scans p. It calls onStart(i) when a new event begins at p[i] and
// onEnd(i, ev) when an event ends just before p[i] (its blank line
// included). ev is only valid during the call.
func (s *sseScanner) feed(p []byte, onStart func(int), onEnd func(int, *sseEvent)) {
	i := 0
	for i < len(p) {
		if !s.inEvent {
			s.inEvent = true
			onStart(i)
		}
		if s.afterCR {
			s.afterCR = false
			if p[i] == '\n' { // the LF of a CRLF split across pieces
				i++
				continue
			}
		}
		j := bytes.IndexAny(p[i:], "\r\n")
		if j < 0 {
			s.appendLine(p[i:])
			return
		}
		s.appendLine(p[i : i+j])
		end := i + j + 1
		if p[i+j] == '\r' {
			if end < len(p) {
				if p[end] == '\n' {
					end++
				}
			} else {
				s.afterCR = true
			}
		}
		if s.endLine() {
			ev := sseEvent{data: s.data, hasData: s.hasData, overflow: s.overflow}
			s.resetEvent()
			onEnd(end, &ev)
		}
		i = end
	}
}

func (s *sseScanner) appendLine(b []byte) {
	s.lineLen += len(b)
	if room := s.maxData + 16 - len(s.line); room > 0 {
		if len(b) > room {
			b = b[:room]
			s.lineOver = true
		}
		s.line = append(s.line, b...)
	} else if len(b) > 0 {
		s.lineOver = true
	}
}

// endLine processes the completed line and reports whether it was blank (the
// end of an event).
func (s *sseScanner) endLine() bool {
	line, n, over := s.line, s.lineLen, s.lineOver
	s.line, s.lineLen, s.lineOver = s.line[:0], 0, false
	if n == 0 {
		return true
	}
	if line[0] == ':' {
		return false // a comment
	}
	field, value := line, []byte(nil)
	if k := bytes.IndexByte(line, ':'); k >= 0 {
		field, value = line[:k], line[k+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	if string(field) != "data" {
		return false
	}
	if over {
		s.overflow = true
	}
	if s.hasData {
		s.data = append(s.data, '\n')
	}
	s.hasData = true
	if len(s.data)+len(value) > s.maxData {
		s.overflow = true
		return false
	}
	s.data = append(s.data, value...)
	return false
}

func (s *sseScanner) resetEvent() {
	s.inEvent, s.hasData, s.overflow = false, false, false
	if cap(s.data) > 64<<10 {
		s.data = nil // do not keep a huge buffer on an idle stream
	} else {
		s.data = s.data[:0]
	}
	if cap(s.line) > 64<<10 {
		s.line = nil
	}
}

// rewriteEvent returns the raw event with its data lines replaced by data
// (one data line per line of data); other lines (id, event, retry,
// comments) and the line endings stay as they were.
func rewriteEvent(raw, data []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(raw) + len(data))
	wroteData := false
	writeData := func() {
		for _, l := range bytes.Split(data, []byte("\n")) {
			out.WriteString("data: ")
			out.Write(l)
			out.WriteByte('\n')
		}
		wroteData = true
	}
	for len(raw) > 0 {
		j := bytes.IndexAny(raw, "\r\n")
		line, term := raw, []byte(nil)
		if j >= 0 {
			line, term = raw[:j], raw[j:j+1]
			if raw[j] == '\r' && j+1 < len(raw) && raw[j+1] == '\n' {
				term = raw[j : j+2]
			}
			raw = raw[j+len(term):]
		} else {
			raw = nil
		}
		isData := bytes.Equal(line, []byte("data")) || bytes.HasPrefix(line, []byte("data:"))
		switch {
		case isData && !wroteData:
			writeData()
		case isData:
		default:
			out.Write(line)
			out.Write(term)
		}
	}
	return out.Bytes()
}
