package telemetry

import (
	"context"
	"path/filepath"
	"sync"
	"time"
)

// pipeline moves one signal's cursor through the audit logs: it reads a
// batch of lines, hands them to its sink (an OTLP export) and, only when
// that succeeded, moves the cursor and saves it.
type pipeline struct {
	e      *Exporter
	signal string
	sink   func(ctx context.Context, recs []record) error
	cur    *cursor
	kick   chan struct{}

	lastSize map[string]int64 // file identity -> size last seen

	mu sync.Mutex
	st SignalStatus
}

func newPipeline(e *Exporter, signal string, s *sinks) (*pipeline, error) {
	c, err := loadCursor(filepath.Join(e.cfg.StateDir, "cursor-"+signal+".json"))
	if err != nil {
		return nil, err
	}
	return &pipeline{e: e, signal: signal, sink: s.forSignal(signal), cur: c, kick: make(chan struct{}, 1),
		lastSize: map[string]int64{}, st: SignalStatus{Signal: signal}}, nil
}

func (p *pipeline) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *pipeline) status() SignalStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

// idleTick re-reads the audit dir now and then even without a wake-up.
const idleTick = 2 * time.Second

func (p *pipeline) loop(ctx context.Context) {
	cfg := &p.e.cfg
	wait := time.Duration(0)
	for ctx.Err() == nil {
		progressed, err := p.step(ctx)
		switch {
		case err != nil:
			wait = min(max(2*wait, cfg.MinBackoff), cfg.MaxBackoff)
		case progressed:
			wait = 0
			continue
		default:
			wait = 0
			select {
			case <-ctx.Done():
				return
			case <-p.kick:
			case <-time.After(idleTick):
			}
			wait = cfg.Delay // let a burst of events fill the batch
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// step exports one batch, if there is one.
func (p *pipeline) step(ctx context.Context) (progressed bool, err error) {
	cfg := &p.e.cfg
	files, err := listAudit(cfg.AuditDir)
	if err != nil {
		p.fail(err)
		return false, err
	}
	lost := p.cur.prune(files, p.lastSize)
	if lost > 0 {
		cfg.Logger.Error("telemetry: audit events were rotated out of the audit log before they could be exported; raise telemetry.backlog_limit_mb's attention or bring the collector back sooner",
			"signal", p.signal, "lost_bytes", lost)
	}
	for _, f := range files {
		p.lastSize[f.server+"/"+f.fp] = f.size
	}
	p.setBacklog(backlog(files, p.cur), lost)
	for _, f := range files {
		off := p.cur.offset(f)
		if f.size <= off {
			continue
		}
		lines, err := readBatch(f, off, cfg.BatchSize)
		if err != nil || len(lines) == 0 {
			continue
		}
		recs := make([]record, 0, len(lines))
		skipped := int64(0)
		for _, l := range lines {
			if r, ok := decode(l.raw); ok {
				recs = append(recs, r)
			} else if len(l.raw) > 0 {
				skipped++
			}
		}
		if len(recs) > 0 {
			ectx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			err = p.sink(ectx, recs)
			cancel()
			if err != nil {
				p.fail(err)
				return false, err
			}
		}
		p.cur.set(f, lines[len(lines)-1].end)
		if err := p.cur.save(); err != nil {
			cfg.Logger.Warn("telemetry: cannot save the export cursor (events may be sent again after a restart)", "err", err)
		}
		p.ok(uint64(len(recs)), skipped, backlog(files, p.cur))
		return true, nil
	}
	return false, nil
}

func (p *pipeline) fail(err error) {
	text := p.e.errorText(err)
	p.mu.Lock()
	was := p.st.Connected || p.st.LastError == ""
	p.st.Connected, p.st.LastError = false, text
	p.mu.Unlock()
	if was {
		p.e.cfg.Logger.Warn("telemetry: export failed; the events wait in the audit log and are sent when the collector answers", "signal", p.signal, "err", text)
	}
	p.e.changed(was)
}

func (p *pipeline) ok(n uint64, skipped, left int64) {
	p.mu.Lock()
	was := p.st.Connected
	p.st.Connected, p.st.LastOK = true, time.Now()
	p.st.Exported += n
	p.st.Skipped += skipped
	p.mu.Unlock()
	p.setBacklog(left, 0)
	if !was {
		p.e.cfg.Logger.Info("telemetry: exporting", "signal", p.signal, "endpoint", p.e.res.Endpoint)
	}
	p.e.changed(!was)
}

func (p *pipeline) setBacklog(b, lost int64) {
	p.mu.Lock()
	over := b > p.e.res.Backlog
	crossed := over != p.st.OverLimit
	p.st.BacklogBytes, p.st.BacklogEvents, p.st.OverLimit = b, estimateEvents(b), over
	p.st.LostBytes += lost
	p.mu.Unlock()
	if crossed && over {
		p.e.cfg.Logger.Warn("telemetry: the export backlog is over its limit; nothing is dropped yet, but the audit log's rotation will drop the oldest events if the collector stays away",
			"signal", p.signal, "backlog_bytes", b, "limit_bytes", p.e.res.Backlog)
	}
	if crossed || lost > 0 {
		p.e.changed(true)
	}
}
