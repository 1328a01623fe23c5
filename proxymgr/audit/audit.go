// Package audit writes Keyport's MCP audit log: one JSON object per line per
// event (session start and end, request, notification, denial, upstream
// error), to a size-rotated file.
//
// Writing never blocks the caller: Log queues the event in a bounded buffer
// that a single goroutine drains (and flushes to the file within 200 ms);
// when the buffer is full the event is dropped and counted (Drops). Every
// line passes through a redaction step first, so no credential can reach the
// file (see Redactor). Several processes may append to one file (the app's
// proxy and a bridge's own): each line is one write, and rotation happens
// once, under a lock file, with the others following it.
package audit

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofrs/flock"
)

// ParamsMode says how much of a request's params the log keeps.
type ParamsMode string

// Params modes.
const (
	ParamsNone     ParamsMode = "none"     // only the size
	ParamsRedacted ParamsMode = "redacted" // the params, with secret-looking values replaced
	ParamsFull     ParamsMode = "full"     // the params as sent (known secrets are still scrubbed)
)

// Event types.
const (
	TypeSessionStart   = "session.start"
	TypeSessionEnd     = "session.end"
	TypeSessionRestore = "session.restore" // the upstream restarted; the proxy re-initialized it
	TypeRequest        = "request"
	TypeNotification   = "notification"
	TypeDenial         = "denial"
	TypeUpstreamError  = "upstream.error"
	// Tool pinning (a tool's definition against the one the user approved).
	TypeToolTrusted  = "tool.trusted"  // pinned as first listed (trust on first use)
	TypeToolHeld     = "tool.held"     // new or changed: hidden, its calls refused, until reviewed
	TypeToolChanged  = "tool.changed"  // new or changed, passed through (pinning mode warn)
	TypeToolApproved = "tool.approved" // the user approved its current definition
	TypeToolBlocked  = "tool.blocked"  // the user kept it blocked
	TypeToolReset    = "tool.reset"    // the user forgot the server's pins
)

// Outcomes.
const (
	OutcomeOK          = "ok"
	OutcomeError       = "error"       // the server answered with a JSON-RPC error
	OutcomeDenied      = "denied"      // the tool policy refused it
	OutcomeRejected    = "rejected"    // the proxy refused it (bad request, no credential)
	OutcomeUnreachable = "unreachable" // the upstream could not be reached
	OutcomeNoResponse  = "no_response" // the stream ended before a response
	OutcomeHeld        = "held"        // tool pinning held the tool (its definition is not approved)
)

// Event is one audit record.
type Event struct {
	Time time.Time `json:"time"`
	Type string    `json:"event"`
	// EventID identifies the event for good: the Writer gives each event
	// one (a random per-writer prefix and a counter) unless the caller
	// set it. Exporters send it along so a backend can drop a duplicate.
	// Lines written before it existed have none.
	EventID         string `json:"event_id,omitempty"`
	Server          string `json:"server"`
	Session         string `json:"session,omitempty"`
	ClientName      string `json:"client_name,omitempty"`
	ClientVersion   string `json:"client_version,omitempty"`
	ProtocolVersion string `json:"protocol_version,omitempty"`
	// Via says how the request reached the proxy when a Keyport profile
	// endpoint sent it: "profile NAME", plus "; tool=NAME" (the tool as
	// the client called it) and "; overrides=rename,description" when the
	// profile renamed it or replaced its description. It is what the
	// profile endpoint says, for attribution.
	Via        string          `json:"via,omitempty"`
	Method     string          `json:"method,omitempty"`
	ID         json.RawMessage `json:"id,omitempty"`
	Tool       string          `json:"tool,omitempty"`
	ParamsSize int             `json:"params_size,omitempty"`
	Params     json.RawMessage `json:"params,omitempty"` // as sent; the Writer applies Config.Params
	DurationMS float64         `json:"duration_ms"`
	Outcome    string          `json:"outcome"`
	Error      string          `json:"error,omitempty"`
	Status     int             `json:"http_status,omitempty"`
	// Tool pinning: the approved and the current definition's hashes, the
	// suspicious text found, and what happened.
	OldHash string   `json:"old_hash,omitempty"`
	NewHash string   `json:"new_hash,omitempty"`
	Flags   []string `json:"flags,omitempty"`
	Detail  string   `json:"detail,omitempty"`
}

// Config configures the audit log.
type Config struct {
	// File is the log file's path; empty disables the audit log.
	File string
	// Params says whether request params are logged: none (default),
	// redacted or full.
	Params ParamsMode
	// MaxBytes rotates the file when it would grow past this size
	// (default 10 MiB).
	MaxBytes int64
	// MaxBackups is how many rotated files (FILE.1 ... FILE.N) are kept
	// (default 5).
	MaxBackups int
	// LogList logs ping and */list requests even when they succeed (they are
	// skipped by default; failures are always logged).
	LogList bool
	// Buffer is how many events may wait to be written before new ones are
	// dropped (default 1024).
	Buffer int
	// Redactor, if set, is applied to every line after the built-in
	// redaction, e.g. the keychain's redactor of every stored secret.
	Redactor interface{ Redact(string) string }
}

// Check validates the configuration and fills defaults.
func (c *Config) Check() error {
	switch c.Params {
	case "":
		c.Params = ParamsNone
	case ParamsNone, ParamsRedacted, ParamsFull:
	default:
		return fmt.Errorf("audit: params mode %q: use none, redacted or full", c.Params)
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 10 << 20
	}
	if c.MaxBytes < 4096 {
		return fmt.Errorf("audit: max size %d bytes is too small; use at least 4096", c.MaxBytes)
	}
	if c.MaxBackups == 0 {
		c.MaxBackups = 5
	}
	if c.MaxBackups < 0 {
		return fmt.Errorf("audit: max backups %d: use 0 (default 5) or more", c.MaxBackups)
	}
	if c.Buffer == 0 {
		c.Buffer = 1024
	}
	if c.Buffer < 0 {
		return fmt.Errorf("audit: buffer %d: use a positive size", c.Buffer)
	}
	return nil
}

// Writer appends events to the audit file. A nil *Writer discards events.
type Writer struct {
	cfg      Config
	redactor *Redactor
	ch       chan *Event
	done     chan struct{}
	drops    atomic.Uint64
	written  atomic.Uint64
	closeOne sync.Once
	closed   atomic.Bool
	idPrefix string // random, per writer: event ids never collide across processes
	idSeq    uint64 // owned by the writer goroutine

	// owned by the writer goroutine
	f    *os.File
	bw   *bufio.Writer
	size int64
	err  error        // the last write error, reported by Close
	lock *flock.Flock // rotation, across the processes that share the file
}

// Open creates the directory and file if needed and starts the writer. cfg
// must have been checked. secrets is the redactor whose values are scrubbed
// from every line (nil: a new empty one).
func Open(cfg Config, secrets *Redactor) (*Writer, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.File == "" {
		return nil, errors.New("audit: no file given")
	}
	if secrets == nil {
		secrets = NewRedactor()
	}
	if err := os.MkdirAll(filepath.Dir(cfg.File), 0o700); err != nil {
		return nil, fmt.Errorf("audit: create the directory of %s: %w", cfg.File, err)
	}
	var prefix [8]byte
	if _, err := rand.Read(prefix[:]); err != nil {
		return nil, fmt.Errorf("audit: event id prefix: %w", err)
	}
	w := &Writer{cfg: cfg, redactor: secrets, ch: make(chan *Event, cfg.Buffer), done: make(chan struct{}),
		idPrefix: hex.EncodeToString(prefix[:]),
		lock:     flock.New(filepath.Join(filepath.Dir(cfg.File), "."+filepath.Base(cfg.File)+".lock"))}
	if err := w.open(); err != nil {
		return nil, err
	}
	go w.run()
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.cfg.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", w.cfg.File, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: stat %s: %w", w.cfg.File, err)
	}
	w.f, w.size = f, st.Size()
	if w.bw == nil {
		w.bw = bufio.NewWriterSize(f, 64<<10)
	} else {
		w.bw.Reset(f)
	}
	return nil
}

// Config returns the writer's configuration.
func (w *Writer) Config() Config {
	if w == nil {
		return Config{Params: ParamsNone}
	}
	return w.cfg
}

// Log queues e without blocking. When the buffer is full (or the writer is
// closed) the event is dropped and counted.
func (w *Writer) Log(e Event) {
	if w == nil {
		return
	}
	if w.closed.Load() {
		w.drops.Add(1)
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	select {
	case w.ch <- &e:
	default:
		w.drops.Add(1)
	}
}

// Drops is how many events were dropped because the buffer was full.
func (w *Writer) Drops() uint64 {
	if w == nil {
		return 0
	}
	return w.drops.Load()
}

// Written is how many events reached the file (or its buffer).
func (w *Writer) Written() uint64 {
	if w == nil {
		return 0
	}
	return w.written.Load()
}

// Close writes what is queued, closes the file and stops the writer. It
// returns the last write error, if any. Safe to call more than once.
func (w *Writer) Close() error {
	if w == nil {
		return nil
	}
	w.closeOne.Do(func() {
		w.closed.Store(true)
		close(w.ch)
	})
	<-w.done
	return w.err
}

// flushDelay is how long a written event may wait in the buffer: flushing
// per event would cost a write per request.
const flushDelay = 200 * time.Millisecond

func (w *Writer) run() {
	defer close(w.done)
	var timer *time.Timer
	var flushC <-chan time.Time
	for {
		select {
		case e, ok := <-w.ch:
			if !ok {
				w.flush()
				if w.f != nil {
					if err := w.f.Close(); err != nil && w.err == nil {
						w.err = err
					}
				}
				return
			}
			w.write(*e)
			if timer == nil {
				timer = time.NewTimer(flushDelay)
				flushC = timer.C
			}
		case <-flushC:
			w.flush()
			w.followRotation()
			timer, flushC = nil, nil
		}
	}
}

func (w *Writer) flush() {
	if w.bw == nil {
		return
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("audit: write %s: %w", w.cfg.File, err)
	}
}

func (w *Writer) write(e Event) {
	if w.f == nil { // a failed rotation: try to reopen
		if err := w.open(); err != nil {
			w.err = err
			w.drops.Add(1)
			return
		}
	}
	if e.EventID == "" {
		w.idSeq++
		e.EventID = w.idPrefix + "-" + strconv.FormatUint(w.idSeq, 16)
	}
	switch w.cfg.Params {
	case ParamsNone:
		e.Params = nil
	case ParamsRedacted:
		e.Params = RedactParams(e.Params) // here, off the request path
	}
	line, err := json.Marshal(e)
	if err != nil {
		// Only a malformed raw params or id can cause this; keep the event without them.
		e.Params, e.ID = nil, nil
		if line, err = json.Marshal(e); err != nil {
			w.drops.Add(1)
			return
		}
	}
	s := w.redactor.Redact(string(line))
	if w.cfg.Redactor != nil {
		s = w.cfg.Redactor.Redact(s)
	}
	need := int64(len(s)) + 1
	if w.size > 0 && w.size+need > w.cfg.MaxBytes {
		w.rotate(need)
		if w.f == nil {
			w.drops.Add(1)
			return
		}
	}
	// A line reaches the file in one write, never split at the buffer's
	// end: another process appending to the same file (the app's proxy and
	// a bridge's) cannot land in the middle of it.
	if w.bw.Available() < len(s)+1 {
		w.flush()
	}
	var n int
	if len(s)+1 > w.bw.Size() {
		n, err = w.f.Write([]byte(s + "\n"))
	} else {
		n, err = w.bw.WriteString(s)
		if err == nil {
			err = w.bw.WriteByte('\n')
			n++
		}
	}
	w.size += int64(n)
	if err != nil {
		w.err = fmt.Errorf("audit: write %s: %w", w.cfg.File, err)
		w.drops.Add(1)
		return
	}
	w.written.Add(1)
}

// rotate makes room for need more bytes: it renames FILE.(N-1) to FILE.N
// ... FILE to FILE.1 and opens a new FILE. Other processes may append to
// the same file (the app's proxy and a bridge's own), so it rotates under a
// lock file, and only if the file still is the one this writer has open
// and is really full: when another writer rotated first, it just follows.
func (w *Writer) rotate(need int64) {
	w.flush()
	locked, err := w.lock.TryLockContext(context.Background(), 5*time.Millisecond)
	if err == nil && locked {
		defer w.lock.Unlock()
	}
	// (Without the lock file, rotating alone is still better than growing
	// without bound.) Another writer may have rotated already: then the
	// file to check is the new one.
	w.followRotation()
	if st, err := w.f.Stat(); err == nil && st.Size()+need <= w.cfg.MaxBytes {
		w.size = st.Size()
		return
	}
	if err := w.f.Close(); err != nil {
		w.err = err
	}
	w.f = nil
	base := w.cfg.File
	_ = os.Remove(fmt.Sprintf("%s.%d", base, w.cfg.MaxBackups))
	for i := w.cfg.MaxBackups - 1; i >= 1; i-- {
		_ = os.Rename(fmt.Sprintf("%s.%d", base, i), fmt.Sprintf("%s.%d", base, i+1))
	}
	if err := os.Rename(base, base+".1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.err = fmt.Errorf("audit: rotate %s: %w", base, err)
	}
	if err := w.open(); err != nil {
		w.err = err
	}
}

// followRotation reopens FILE when the file this writer has open is no
// longer it (another process rotated it, or it was deleted).
func (w *Writer) followRotation() {
	if w.f == nil {
		return
	}
	cur, err := os.Stat(w.cfg.File)
	if err == nil {
		if mine, err := w.f.Stat(); err == nil && os.SameFile(cur, mine) {
			return
		}
	}
	w.flush()
	_ = w.f.Close()
	w.f = nil
	if err := w.open(); err != nil {
		w.err = err
	}
}
