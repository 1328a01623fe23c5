package telemetry

import (
	"cmp"
	"context"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// signal is one exporter's state (logs, metrics or traces): how far its
// export got in the audit logs, its back-off after a failure, its status.
type signal struct {
	name  string
	cur   *cursor
	wait  time.Duration // the current back-off
	retry time.Time     // after a failure: not before

	mu sync.Mutex
	st SignalStatus
}

func newSignal(stateDir, name string) (*signal, error) {
	c, err := loadCursor(filepath.Join(stateDir, "cursor-"+name+".json"))
	if err != nil {
		return nil, err
	}
	return &signal{name: name, cur: c, st: SignalStatus{Signal: name}}, nil
}

func (s *signal) status() SignalStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// pipeline is the export's one loop. Each step reads the next batch of
// audit lines once, decodes each line once, and hands the same records to
// every signal whose cursor stands at that batch; a signal's cursor moves,
// and is saved, only when its export succeeded. Signals normally move
// together; one that failed backs off on its own and catches up later
// (reading its lines again), without holding the others back.
type pipeline struct {
	e       *Exporter
	backend Backend
	signals []*signal
	kick    chan struct{}

	// owned by the loop
	lastSize map[string]int64 // file identity -> size at the previous step
	batch    batch
	recs     []Record
}

func (p *pipeline) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// idleTick re-reads the audit dir now and then even without a wake-up.
const idleTick = 2 * time.Second

// loop exports until ctx ends. It runs at most one step per Delay while
// the export keeps up: new events (an fsnotify wake-up) start a Delay in
// which the batch fills, so a busy proxy costs one export per signal per
// Delay, whatever its rate. A full batch (a backlog) is followed by the
// next one at once.
func (p *pipeline) loop(ctx context.Context) {
	cfg := &p.e.cfg
	for ctx.Err() == nil {
		if p.step(ctx) {
			continue
		}
		p.batch.release()
		if cap(p.recs) > 1024 {
			p.recs = nil
		}
		wait := idleTick
		for _, s := range p.signals {
			if !s.retry.IsZero() {
				wait = min(wait, max(time.Until(s.retry), 0))
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			continue
		case <-p.kick:
			t.Stop()
		}
		// New events: let them gather for Delay.
		t = time.NewTimer(cfg.Delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// group is the signals whose next lines start at the same place.
type group struct {
	file    int // index in the listing
	off     int64
	signals []*signal
}

// step exports one batch per signal that is due, reading and decoding each
// batch once for the signals it serves. more: a batch was full, so more
// lines are waiting.
func (p *pipeline) step(ctx context.Context) (more bool) {
	cfg := &p.e.cfg
	files, err := listAudit(cfg.AuditDir)
	if err != nil {
		for _, s := range p.signals {
			p.fail(s, err)
		}
		return false
	}
	sizes := make(map[string]int64, len(files))
	for _, f := range files {
		sizes[f.server+"/"+f.fp] = f.size
	}
	for _, s := range p.signals {
		lost := s.cur.prune(files, p.lastSize)
		if lost > 0 {
			cfg.Logger.Error("telemetry: audit events were rotated out of the audit log before they could be exported; raise telemetry.backlog_limit_mb's attention or bring the collector back sooner",
				"signal", s.name, "lost_bytes", lost)
		}
		p.setBacklog(s, backlog(files, s.cur), lost)
	}
	p.lastSize = sizes

	now := time.Now()
	var groups []*group
	for _, s := range p.signals {
		if now.Before(s.retry) {
			continue
		}
		for i, f := range files {
			off := s.cur.offset(f)
			if off >= f.size {
				continue
			}
			j := slices.IndexFunc(groups, func(g *group) bool { return g.file == i && g.off == off })
			if j < 0 {
				groups = append(groups, &group{file: i, off: off})
				j = len(groups) - 1
			}
			groups[j].signals = append(groups[j].signals, s)
			break
		}
	}
	slices.SortFunc(groups, func(a, b *group) int { return cmp.Or(cmp.Compare(a.file, b.file), cmp.Compare(a.off, b.off)) })

	for _, g := range groups {
		f := files[g.file]
		if err := p.batch.read(f, g.off, cfg.BatchSize); err != nil || len(p.batch.lines) == 0 {
			continue // the file rotated away meanwhile, or its line is not complete yet
		}
		p.recs = slices.Grow(p.recs[:0], len(p.batch.lines))[:len(p.batch.lines)]
		n, skipped := 0, int64(0)
		for _, l := range p.batch.lines {
			if decodeInto(&p.recs[n], l) {
				n++
			} else if len(l) > 0 {
				skipped++
			}
		}
		recs := p.recs[:n]
		// The signals export the same records side by side.
		errs := make([]error, len(g.signals))
		if len(recs) > 0 {
			var wg sync.WaitGroup
			for i, s := range g.signals {
				wg.Go(func() {
					ectx, cancel := context.WithTimeout(ctx, cfg.Timeout)
					errs[i] = p.backend.Export(ectx, s.name, recs)
					cancel()
				})
			}
			wg.Wait()
		}
		for i, s := range g.signals {
			if errs[i] != nil {
				p.fail(s, errs[i])
				continue
			}
			s.cur.set(f, p.batch.end)
			if err := s.cur.save(); err != nil {
				cfg.Logger.Warn("telemetry: cannot save the export cursor (events may be sent again after a restart)", "signal", s.name, "err", err)
			}
			p.ok(s, uint64(len(recs)), skipped, backlog(files, s.cur))
			if p.batch.full {
				more = true
			}
		}
	}
	return more
}

func (p *pipeline) fail(s *signal, err error) {
	cfg := &p.e.cfg
	text := p.e.errorText(err)
	s.wait = min(max(2*s.wait, cfg.MinBackoff), cfg.MaxBackoff)
	s.retry = time.Now().Add(s.wait)
	s.mu.Lock()
	was := s.st.Connected || s.st.LastError == ""
	s.st.Connected, s.st.LastError = false, text
	s.mu.Unlock()
	if was {
		cfg.Logger.Warn("telemetry: export failed; the events wait in the audit log and are sent when the collector answers", "signal", s.name, "err", text)
	}
	p.e.changed(was)
}

func (p *pipeline) ok(s *signal, n uint64, skipped, left int64) {
	s.wait, s.retry = 0, time.Time{}
	s.mu.Lock()
	was := s.st.Connected
	s.st.Connected, s.st.LastOK = true, time.Now()
	s.st.Exported += n
	s.st.Skipped += skipped
	s.mu.Unlock()
	p.setBacklog(s, left, 0)
	if !was {
		p.e.cfg.Logger.Info("telemetry: exporting", "signal", s.name, "endpoint", p.e.res.Endpoint)
	}
	p.e.changed(!was)
}

func (p *pipeline) setBacklog(s *signal, b, lost int64) {
	s.mu.Lock()
	over := b > p.e.res.Backlog
	crossed := over != s.st.OverLimit
	s.st.BacklogBytes, s.st.BacklogEvents, s.st.OverLimit = b, estimateEvents(b), over
	s.st.LostBytes += lost
	s.mu.Unlock()
	if crossed && over {
		p.e.cfg.Logger.Warn("telemetry: the export backlog is over its limit; nothing is dropped yet, but the audit log's rotation will drop the oldest events if the collector stays away",
			"signal", s.name, "backlog_bytes", b, "limit_bytes", p.e.res.Backlog)
	}
	if crossed || lost > 0 {
		p.e.changed(true)
	}
}
