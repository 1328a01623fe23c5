package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The go-sdk client hands notifications to their handlers on a goroutine of
// their own, after it delivered responses: a member's progress and log
// messages sent during a call could reach the gateway after the call's
// result, when the client's stream for it is closed. So the member
// transport reads the event stream of each forwarded request itself and
// relays those notifications, in order, on the client's stream for the
// same request before the result goes out; the go-sdk client never sees
// them.

// callStream filters one member response stream of call c.
type callStream struct {
	g   *Gateway
	c   *call
	in  *bufio.Reader
	src io.Closer
	out bytes.Buffer // filtered events ready to be read
	evt bytes.Buffer // the event being read
	err error

	retry    time.Duration // the member's last retry field
	answered bool          // the response passed
}

func newCallStream(g *Gateway, c *call, body io.ReadCloser) *callStream {
	return &callStream{g: g, c: c, in: bufio.NewReaderSize(body, 4<<10), src: body}
}

func (s *callStream) Read(p []byte) (int, error) {
	for s.out.Len() == 0 && s.err == nil {
		line, err := s.in.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			s.evt.Write(line) // a long line: keep reading it
			continue
		}
		s.evt.Write(line)
		if err != nil {
			s.flush()
			s.err = err
			if err == io.EOF && !s.answered && s.retry > 0 && s.c.closeStream != nil {
				// The member closed the stream before answering, asking the
				// gateway to come back (SEP-1699): the client is told the same.
				s.c.closeStream(mcp.CloseSSEStreamArgs{RetryAfter: s.retry})
			}
			break
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 { // end of an event
			s.flush()
		}
	}
	if s.out.Len() > 0 {
		return s.out.Read(p)
	}
	return 0, s.err
}

func (s *callStream) Close() error { return s.src.Close() }

// flush passes the event read so far on, unless it is a notification the
// gateway relays itself.
func (s *callStream) flush() {
	evt := s.evt.Bytes()
	if len(evt) > 0 && !s.relayed(evt) {
		s.note(evt)
		s.out.Write(evt)
	}
	s.evt.Reset()
}

var (
	progressMethod = []byte(`"notifications/progress"`)
	messageMethod  = []byte(`"notifications/message"`)
)

// relayed relays evt to the client when it is a progress or log
// notification, and reports whether it did.
func (s *callStream) relayed(evt []byte) bool {
	if !bytes.Contains(evt, progressMethod) && !bytes.Contains(evt, messageMethod) {
		return false
	}
	var data []byte
	for _, line := range bytes.Split(evt, []byte("\n")) {
		if v, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r"), []byte("data:")); ok {
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, bytes.TrimPrefix(v, []byte(" "))...)
		}
	}
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if json.Unmarshal(data, &msg) != nil || msg.ID != nil {
		return false
	}
	switch msg.Method {
	case "notifications/progress":
		var p mcp.ProgressNotificationParams
		if json.Unmarshal(msg.Params, &p) != nil {
			return false
		}
		if s.c.token == nil {
			return true // the client asked for none
		}
		p.ProgressToken = s.c.token
		s.g.relay(s.c.ctx, s.c.ss, "notifications/progress", &p)
		return true
	case "notifications/message":
		var p mcp.LoggingMessageParams
		if json.Unmarshal(msg.Params, &p) != nil {
			return false
		}
		s.g.relay(s.c.ctx, s.c.ss, "notifications/message", &p)
		return true
	}
	return false
}

var (
	retryField  = []byte("retry:")
	resultField = []byte(`"result"`)
	errorField  = []byte(`"error"`)
)

// note remembers the retry field and whether the response passed.
func (s *callStream) note(evt []byte) {
	for _, line := range bytes.Split(evt, []byte("\n")) {
		if v, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r"), retryField); ok {
			if ms, err := strconv.Atoi(string(bytes.TrimSpace(v))); err == nil && ms >= 0 {
				s.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if bytes.Contains(evt, resultField) || bytes.Contains(evt, errorField) {
		s.answered = true
	}
}
