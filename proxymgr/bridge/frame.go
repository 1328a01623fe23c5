package bridge

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxMessageSize bounds one JSON-RPC message in either direction.
const DefaultMaxMessageSize = 32 << 20

// errLineTooLong is returned (once per oversized line) by lineReader.next;
// the rest of the line has been discarded and reading can continue.
var errLineTooLong = errors.New("message too large")

// lineReader splits the stdio stream into newline-delimited messages. It
// accepts "\n" and "\r\n", skips blank lines, returns a final line that lacks
// its newline, and survives oversized lines.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next non-blank line without its terminator. The slice is
// valid until the next call. At the end of input it returns io.EOF.
func (l *lineReader) next() ([]byte, error) {
	for {
		line, err := l.readLine()
		if err != nil && (err != io.EOF || len(line) == 0) {
			return nil, err
		}
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			if err == io.EOF {
				return nil, io.EOF
			}
			continue
		}
		return line, nil
	}
}

// readLine returns one line without "\n". A line longer than max bytes
// (counting a trailing "\r") is consumed to its end and reported as
// errLineTooLong.
func (l *lineReader) readLine() ([]byte, error) {
	l.buf = l.buf[:0]
	tooLong := false
	for {
		chunk, err := l.r.ReadSlice('\n')
		if !tooLong {
			if len(l.buf)+len(chunk) > l.max+2 { // +2: the terminator
				tooLong = true
				l.buf = l.buf[:0]
			} else if len(l.buf) == 0 && err == nil {
				// Fast path: the whole line is in the reader's buffer.
				line := chunk[:len(chunk)-1]
				if len(line) > l.max {
					return nil, errLineTooLong
				}
				return line, nil
			} else {
				l.buf = append(l.buf, chunk...)
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == nil:
			if tooLong {
				return nil, errLineTooLong
			}
			line := l.buf[:len(l.buf)-1]
			if len(line) > l.max {
				return nil, errLineTooLong
			}
			return line, nil
		default:
			if tooLong || len(l.buf) > l.max {
				if err == io.EOF {
					return nil, errLineTooLong
				}
				return nil, err
			}
			return l.buf, err
		}
	}
}

// splitBatch returns the elements of a JSON array of messages. JSON-RPC
// batches were removed from MCP in 2025-06-18; the bridge still accepts them
// from older clients and forwards each message on its own.
func splitBatch(line []byte) ([][]byte, error) {
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '[' {
		return nil, errors.New("a batch must be a JSON array")
	}
	var out [][]byte
	end, err := eachElement(line, i, 0, func(vs, ve int) error {
		out = append(out, line[vs:ve])
		return nil
	})
	if err != nil {
		return nil, err
	}
	if skipSpace(line, end) != len(line) {
		return nil, errTrailingData
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty batch")
	}
	return out, nil
}
