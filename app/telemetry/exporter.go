package telemetry

import (
	"context"
	"encoding/json"
	"os"
	"os/user"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/gofrs/flock"

	"keyport/app/internal/atomicfile"
	"keyport/proxymgr/redact"
)

// SignalStatus is the state of one exporter (logs, metrics or traces).
type SignalStatus struct {
	Signal    string    `json:"signal"`
	Connected bool      `json:"connected"` // the last export succeeded
	LastError string    `json:"last_error,omitempty"`
	LastOK    time.Time `json:"last_ok,omitzero"`
	Exported  uint64    `json:"exported"` // events exported by this process
	// BacklogBytes are the audit bytes not exported yet; BacklogEvents
	// estimates the events in them.
	BacklogBytes  int64 `json:"backlog_bytes"`
	BacklogEvents int64 `json:"backlog_events"`
	// OverLimit: the backlog passed the limit (telemetry.backlog_limit_mb).
	OverLimit bool `json:"over_limit,omitempty"`
	// LostBytes were rotated out of the audit log before they could be
	// exported (the audit log's size limit was reached while the collector
	// was away); Skipped are lines that were not audit events.
	LostBytes int64 `json:"lost_bytes,omitempty"`
	Skipped   int64 `json:"skipped,omitempty"`
}

// Status is the export's state, for `keyport telemetry status`, the GUI
// and the tray.
type Status struct {
	Enabled  bool   `json:"enabled"`
	Reason   string `json:"reason,omitempty"` // why not enabled, or why it cannot run
	Endpoint string `json:"endpoint,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Managed  bool   `json:"managed"` // the settings are the organization's
	// Active: this process exports; Standby: another Keyport process does
	// (or did, and this one takes over when it exits).
	Active  bool           `json:"active"`
	PID     int            `json:"pid,omitempty"` // of the exporting process
	Updated time.Time      `json:"updated,omitzero"`
	Signals []SignalStatus `json:"signals,omitempty"`
}

// Exporter exports the audit logs of a config dir. Start one per process
// that runs proxies; only one of them (per config dir) is active.
type Exporter struct {
	cfg    Config
	res    Resolved
	lock   *flock.Flock
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}

	secrets *redact.Matcher // the headers' values: never in an error text (redact.go)

	mu        sync.Mutex
	active    bool
	pipelines []*pipeline
	sinks     *sinks
	lastWrite time.Time
	notify    func(Status)
}

// New checks the configuration; Start begins the work.
func New(cfg Config) (*Exporter, Resolved, error) {
	cfg.defaults()
	res, err := cfg.Resolve()
	if err != nil {
		return nil, res, err
	}
	return &Exporter{cfg: cfg, res: res, done: make(chan struct{}), wake: make(chan struct{}, 1), secrets: headerMatcher(res.Headers),
		lock: flock.New(filepath.Join(cfg.StateDir, "export.lock"))}, res, nil
}

// OnChange registers f, called (without locks held) when the status
// changed in a way a person should see: connected or not, over the
// backlog limit or not. Call before Start.
func (e *Exporter) OnChange(f func(Status)) { e.notify = f }

// Start runs the exporter until Close. When the export is not enabled it
// does nothing (Status says why).
func (e *Exporter) Start(ctx context.Context) {
	e.ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if !e.res.Enabled {
		close(e.done)
		return
	}
	go e.run()
}

// Wake tells the exporter new events may be in the audit log (it also
// watches the audit dir itself).
func (e *Exporter) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Close stops the exporter: an export in flight gets up to ctx's deadline,
// the metrics are flushed; the cursors are on disk.
func (e *Exporter) Close(ctx context.Context) error {
	if e.cancel == nil {
		return nil
	}
	e.cancel()
	select {
	case <-e.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	e.mu.Lock()
	s := e.sinks
	e.mu.Unlock()
	if s != nil {
		return s.shutdown(ctx)
	}
	return nil
}

func (e *Exporter) run() {
	defer close(e.done)
	if err := os.MkdirAll(e.cfg.StateDir, 0o700); err != nil {
		e.cfg.Logger.Error("telemetry: cannot create its state dir; nothing is exported", "err", err)
		return
	}
	// Only one process exports a config dir: the others stand by.
	for {
		ok, err := e.lock.TryLock()
		if err == nil && ok {
			break
		}
		select {
		case <-e.ctx.Done():
			return
		case <-time.After(e.cfg.LockRetry):
		}
	}
	defer e.lock.Unlock()
	h, u := e.host()
	routeSDKErrors(e)
	s, err := newSinks(e.ctx, &e.cfg, e.res, [2]string{h, u})
	if err != nil {
		e.cfg.Logger.Error("telemetry: cannot set up the OTLP exporters", "err", e.errorText(err))
		return
	}
	e.mu.Lock()
	e.active, e.sinks = true, s
	for _, sig := range e.res.Signals {
		p, err := newPipeline(e, sig, s)
		if err != nil {
			e.cfg.Logger.Error("telemetry: "+sig, "err", e.errorText(err))
			continue
		}
		e.pipelines = append(e.pipelines, p)
	}
	ps := e.pipelines
	e.mu.Unlock()
	e.cfg.Logger.Info("telemetry: exporting to the OpenTelemetry collector", "endpoint", e.res.Endpoint, "protocol", e.res.Protocol)

	// fsnotify on the audit dir wakes the pipelines; a slow tick covers a
	// dir created later or an event lost.
	if fsw, err := fsnotify.NewWatcher(); err == nil {
		defer fsw.Close()
		_ = os.MkdirAll(e.cfg.AuditDir, 0o700)
		_ = fsw.Add(e.cfg.AuditDir)
		go func() {
			for {
				select {
				case _, ok := <-fsw.Events:
					if !ok {
						return
					}
					for _, p := range ps {
						p.poke()
					}
				case _, ok := <-fsw.Errors:
					if !ok {
						return
					}
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.loop(e.ctx)
		}()
	}
	go func() {
		for {
			select {
			case <-e.ctx.Done():
				return
			case <-e.wake:
				for _, p := range ps {
					p.poke()
				}
			}
		}
	}()
	wg.Wait()
	e.writeStatus(true)
}

func (e *Exporter) host() (host, usr string) {
	host, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		usr = u.Username
	}
	return host, usr
}

// Status reports the export's state in this process.
func (e *Exporter) Status() Status {
	st := Status{Enabled: e.res.Enabled, Reason: e.res.Reason, Endpoint: e.res.Endpoint, Protocol: e.res.Protocol, Managed: e.cfg.Managed}
	e.mu.Lock()
	st.Active = e.active
	ps, sk := e.pipelines, e.sinks
	e.mu.Unlock()
	if st.Active {
		st.PID, st.Updated = os.Getpid(), time.Now()
	}
	for _, p := range ps {
		ss := p.status()
		if ss.Signal == "metrics" && sk != nil {
			// Counting never fails; the periodic export to the collector may.
			if done, err := sk.metricsStatus(); done {
				ss.Connected, ss.LastError = err == nil, e.errorText(err)
			}
		}
		st.Signals = append(st.Signals, ss)
	}
	return st
}

// changed is called by a pipeline whose status moved; it writes the status
// file (at most once a second unless it matters) and tells OnChange.
func (e *Exporter) changed(important bool) {
	e.writeStatus(important)
	if important && e.notify != nil {
		e.notify(e.Status())
	}
}

func (e *Exporter) writeStatus(force bool) {
	e.mu.Lock()
	if !force && time.Since(e.lastWrite) < time.Second {
		e.mu.Unlock()
		return
	}
	e.lastWrite = time.Now()
	e.mu.Unlock()
	data, err := json.Marshal(e.Status())
	if err == nil {
		_ = atomicfile.WriteFile(filepath.Join(e.cfg.StateDir, "status.json"), data, 0o600)
	}
}

// ReadStatus is the export's state as another process sees it (the CLI):
// the settings, the backlog computed from the audit files and the cursors
// on disk, and what the exporting process last wrote.
func ReadStatus(cfg Config) (Status, error) {
	cfg.defaults()
	res, err := cfg.Resolve()
	st := Status{Enabled: res.Enabled, Reason: res.Reason, Endpoint: res.Endpoint, Protocol: res.Protocol, Managed: cfg.Managed}
	if err != nil {
		st.Enabled, st.Reason = false, err.Error()
		return st, nil
	}
	if !res.Enabled {
		return st, nil
	}
	var written Status
	if data, err := os.ReadFile(filepath.Join(cfg.StateDir, "status.json")); err == nil {
		_ = json.Unmarshal(data, &written)
	}
	lk := flock.New(filepath.Join(cfg.StateDir, "export.lock"))
	if ok, err := lk.TryLock(); err == nil && ok {
		_ = lk.Unlock()
		st.Reason = "no Keyport process is exporting now: events wait in the audit log until Keyport (the tray app or keyport proxy) runs"
	} else {
		st.Active, st.PID, st.Updated = true, written.PID, written.Updated
	}
	files, err := listAudit(cfg.AuditDir)
	if err != nil {
		return st, err
	}
	for _, sig := range res.Signals {
		s := SignalStatus{Signal: sig}
		for _, w := range written.Signals {
			if w.Signal == sig {
				s = w
			}
		}
		c, err := loadCursor(filepath.Join(cfg.StateDir, "cursor-"+sig+".json"))
		if err != nil {
			return st, err
		}
		s.BacklogBytes = backlog(files, c)
		s.BacklogEvents = estimateEvents(s.BacklogBytes)
		s.OverLimit = s.BacklogBytes > res.Backlog
		if !st.Active {
			s.Connected = false
		}
		st.Signals = append(st.Signals, s)
	}
	return st, nil
}

// estimateEvents turns backlog bytes into events (an audit line is about
// 300 bytes without params).
func estimateEvents(b int64) int64 {
	if b <= 0 {
		return 0
	}
	return b/300 + 1
}
