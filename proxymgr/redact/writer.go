package redact

import "io"

// Source gives the secrets to match now. A *Set is one (its values change
// while a stream runs: a refreshed token); a *Matcher is a fixed one.
type Source interface {
	Matcher() *Matcher
}

// Writer passes what is written to it on to an underlying writer with
// every secret replaced by Marker. It holds back only the shortest tail
// that may still be the beginning of a secret, until the next Write
// decides it or Close. It is not safe for concurrent use.
type Writer struct {
	dst   io.Writer
	src   Source
	tail  []byte
	buf   []byte
	st    scanState
	found int64
	err   error
}

// NewWriter returns a Writer to dst redacting the secrets of src as they
// are at each Write.
func NewWriter(dst io.Writer, src Source) *Writer {
	return &Writer{dst: dst, src: src}
}

// Reset makes w a new Writer to dst for src, keeping its buffers.
func (w *Writer) Reset(dst io.Writer, src Source) {
	*w = Writer{dst: dst, src: src, tail: w.tail[:0], buf: w.buf[:0]}
}

// Write redacts p and writes what is decided. It returns len(p) unless
// the underlying writer failed.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	m := w.src.Matcher()
	if m == nil {
		if len(w.tail) > 0 {
			w.st.note(w.tail)
			w.put(w.tail)
			w.tail = w.tail[:0]
		}
		w.st.note(p)
		w.put(p)
		if w.err != nil {
			return 0, w.err
		}
		return len(p), nil
	}
	data := p
	if len(w.tail) > 0 {
		w.buf = append(append(w.buf[:0], w.tail...), p...)
		data = w.buf
	}
	found, held := m.scan(data, false, &w.st, w)
	w.found += int64(found)
	w.tail = append(w.tail[:0], data[len(data)-held:]...)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// Held is the number of bytes written but not yet passed on.
func (w *Writer) Held() int { return len(w.tail) }

// Found is the number of secrets replaced so far.
func (w *Writer) Found() int64 { return w.found }

// Close passes on the held tail, deciding it as the end of the input. It
// does not close the underlying writer. The Writer is usable afterwards as
// a new stream.
func (w *Writer) Close() error {
	if len(w.tail) == 0 || w.err != nil {
		return w.err
	}
	tail := w.tail
	w.tail = nil
	if m := w.src.Matcher(); m != nil {
		found, _ := m.scan(tail, true, &w.st, w)
		w.found += int64(found)
	} else {
		w.put(tail)
	}
	w.st = scanState{}
	w.tail = tail[:0]
	return w.err
}

// emit implements emitter.
func (w *Writer) emit(seg []byte, repl bool) {
	w.put(seg)
	if repl {
		w.put(w.st.marker())
	}
}

func (w *Writer) put(b []byte) {
	if len(b) == 0 || w.err != nil {
		return
	}
	if _, err := w.dst.Write(b); err != nil {
		w.err = err
	}
}
