package proxymgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Errors the Manager returns (test with errors.Is).
var (
	ErrAlreadyRunning = errors.New("already running")
	ErrNotRunning     = errors.New("not running")
	ErrClosed         = errors.New("proxy manager closed")
)

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	// Logger receives the manager's logs (default slog.Default()). A
	// proxy's own Config.Logger, if nil, defaults to it.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the delay before restarting a proxy
	// whose listener failed (defaults 1 s and 30 s).
	MinBackoff, MaxBackoff time.Duration
	// Coalesce is the shortest interval between two counter-change events
	// of one proxy (default 250 ms). State changes are sent at once.
	Coalesce time.Duration
}

// Event tells a subscriber that a proxy's status changed. It carries the
// status at delivery time (so it is never stale); State is stopped once the
// proxy is gone.
type Event struct {
	Status Status
}

// Manager starts, supervises and stops proxies by server name. It is safe
// for concurrent use.
type Manager struct {
	opts ManagerOptions
	log  *slog.Logger

	mu      sync.Mutex
	proxies map[string]*managed
	last    map[string]Status // the final status of proxies no longer running
	subs    map[*subscriber]struct{}
	closed  bool

	draining sync.WaitGroup // replaced proxies finishing their requests
}

// managed is one supervised proxy.
type managed struct {
	name    string
	cfg     Config             // under mu once supervised (Restart replaces it)
	cancel  context.CancelFunc // ends supervision (Stop, Close)
	done    chan struct{}      // closed when supervision has ended
	pending atomic.Bool        // a coalesced event is scheduled

	mu       sync.Mutex
	proxy    *Proxy
	stopCtx  context.Context // bounds the graceful stop
	restarts int
}

func (mp *managed) current() *Proxy {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	return mp.proxy
}

// NewManager returns an empty Manager.
func NewManager(opts ManagerOptions) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(30*time.Second, opts.MinBackoff)
	}
	if opts.Coalesce <= 0 {
		opts.Coalesce = 250 * time.Millisecond
	}
	return &Manager{
		opts:    opts,
		log:     opts.Logger,
		proxies: map[string]*managed{},
		last:    map[string]Status{},
		subs:    map[*subscriber]struct{}{},
	}
}

// Start validates cfg, starts its proxy and supervises it until Stop, Close
// or ctx ends. It returns the proxy's status once it listens. If another
// program holds cfg.Port, the error wraps ErrPortInUse and names the port
// (start again with Port 0 to take a free one).
func (m *Manager) Start(ctx context.Context, cfg Config) (Status, error) {
	if cfg.Logger == nil {
		cfg.Logger = m.log
	}
	if err := cfg.Check(); err != nil {
		return Status{Name: cfg.Name, State: StateError, LastError: err.Error()}, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Status{Name: cfg.Name, State: StateStopped}, ErrClosed
	}
	if mp, ok := m.proxies[cfg.Name]; ok {
		m.mu.Unlock()
		st := mp.current().Status()
		return st, fmt.Errorf("proxy %s is %w on port %d; use Restart to apply a new configuration", cfg.Name, ErrAlreadyRunning, st.Port)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	mp := &managed{name: cfg.Name, cfg: cfg, cancel: cancel, done: make(chan struct{})}
	m.proxies[cfg.Name] = mp // reserve the name while starting
	m.mu.Unlock()

	p, err := m.launch(mp, cfg)
	if err != nil {
		cancel()
		close(mp.done)
		m.mu.Lock()
		delete(m.proxies, cfg.Name)
		st := Status{Name: cfg.Name, State: StateError, LastError: err.Error()}
		if p != nil {
			st = p.Status()
		}
		m.last[cfg.Name] = st
		m.mu.Unlock()
		m.publish(cfg.Name)
		return st, err
	}
	go m.supervise(ctx, sctx, mp, p)
	return p.Status(), nil
}

// launch creates and starts one proxy for mp.
func (m *Manager) launch(mp *managed, cfg Config) (*Proxy, error) {
	p, err := New(cfg)
	if err != nil {
		return nil, err
	}
	notify := func(immediate bool) { m.changed(mp, immediate) }
	p.notify.Store(&notify)
	mp.mu.Lock()
	mp.proxy = p
	mp.mu.Unlock()
	if err := p.Start(context.Background()); err != nil {
		return p, err
	}
	return p, nil
}

// supervise waits for the proxy's listener to fail (restarting it on the
// same port with backoff) or for supervision to end (stopping it).
func (m *Manager) supervise(parent, sctx context.Context, mp *managed, p *Proxy) {
	defer func() {
		m.mu.Lock()
		if m.proxies[mp.name] == mp {
			delete(m.proxies, mp.name)
		}
		m.last[mp.name] = mp.current().Status()
		m.mu.Unlock()
		close(mp.done)
		m.publish(mp.name)
	}()
	stop := func() {
		mp.mu.Lock()
		ctx := mp.stopCtx
		mp.mu.Unlock()
		if ctx == nil {
			ctx = context.Background()
		}
		if err := mp.current().Shutdown(ctx); err != nil {
			m.log.Warn("stopping proxy", "server", mp.name, "err", err)
		}
	}
	backoff := m.opts.MinBackoff
	for {
		select {
		case <-parent.Done():
			stop()
			return
		case <-sctx.Done():
			stop()
			return
		case <-p.sock.done:
		}
		if cur := mp.current(); cur != p {
			// Restart made a successor current: supervise that one.
			p = cur
			continue
		}
		// The listener failed: restart on the same port after a pause.
		why := p.sock.err
		m.log.Error("proxy listener failed; restarting", "server", mp.name, "err", why, "in", backoff)
		_ = p.Shutdown(context.Background())
		p.setState(StateError, fmt.Sprint(why))
		mp.mu.Lock()
		cfg := mp.cfg
		mp.mu.Unlock()
		cfg.Port = p.Port()
		for {
			select {
			case <-parent.Done():
				return
			case <-sctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, m.opts.MaxBackoff)
			np, err := m.launch(mp, cfg)
			if err == nil {
				p = np
				mp.mu.Lock()
				mp.restarts++
				mp.mu.Unlock()
				m.log.Info("proxy restarted", "server", mp.name, "port", cfg.Port)
				backoff = m.opts.MinBackoff
				break
			}
			m.log.Error("restarting proxy failed; retrying", "server", mp.name, "err", err, "in", backoff)
			if np == nil { // the configuration itself is bad: nothing to retry
				return
			}
		}
	}
}

// Stop stops the named proxy gracefully: in-flight requests get up to 5 s,
// then streams are cancelled.
func (m *Manager) Stop(name string) error {
	return m.stop(context.Background(), name)
}

func (m *Manager) stop(ctx context.Context, name string) error {
	m.mu.Lock()
	mp, ok := m.proxies[name]
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("proxy %s is %w", name, ErrNotRunning)
	}
	mp.mu.Lock()
	mp.stopCtx = ctx
	mp.mu.Unlock()
	mp.cancel()
	<-mp.done
	return nil
}

// Restart applies cfg to the named proxy (starting it if it is not
// running). A zero cfg.Port reuses the port it had. On the same port the
// new configuration takes over the listening socket while the old one
// drains, so clients never meet a refused connection; otherwise (or if the
// proxy is not serving) the old proxy stops first.
func (m *Manager) Restart(ctx context.Context, cfg Config) (Status, error) {
	m.mu.Lock()
	mp, ok := m.proxies[cfg.Name]
	m.mu.Unlock()
	if ok {
		if old := mp.current(); old != nil && (cfg.Port == 0 || cfg.Port == old.Port()) {
			if st, err := m.handOver(mp, old, cfg); err == nil {
				return st, nil
			}
			// The new configuration could not start beside the old one
			// (nothing to take over, or it is bad): stop, then start, so the
			// proxy never keeps serving a configuration the user replaced.
		}
		if cfg.Port == 0 {
			if p := mp.current(); p != nil {
				cfg.Port = p.Port()
			}
		}
		if err := m.Stop(cfg.Name); err != nil && !errors.Is(err, ErrNotRunning) {
			return Status{Name: cfg.Name, State: StateError, LastError: err.Error()}, err
		}
	}
	return m.Start(ctx, cfg)
}

// handOver replaces mp's proxy by one with cfg on the same socket: the new
// proxy accepts before the old one stops accepting, and the old one drains
// its requests in the background (Close waits for it).
func (m *Manager) handOver(mp *managed, old *Proxy, cfg Config) (Status, error) {
	if cfg.Logger == nil {
		cfg.Logger = m.log
	}
	cfg.Port = old.Port()
	np, err := New(cfg)
	if err != nil {
		return Status{}, err
	}
	notify := func(immediate bool) { m.changed(mp, immediate) }
	np.notify.Store(&notify)
	if err := np.startAfter(context.Background(), old); err != nil {
		return Status{}, err
	}
	np.carryOver(old)
	mp.mu.Lock()
	mp.proxy = np
	mp.cfg = cfg
	mp.mu.Unlock()
	m.draining.Go(func() {
		if err := old.Shutdown(context.Background()); err != nil {
			m.log.Warn("draining the replaced proxy", "server", mp.name, "err", err)
		}
	})
	np.log.Info("proxy reconfigured; the previous configuration drains", "port", cfg.Port)
	m.publish(mp.name)
	return np.Status(), nil
}

// Status returns the named proxy's status, and whether it is running (or
// starting, or restarting). A proxy that is not running reports its last
// status with State stopped (or error, if it failed to start).
func (m *Manager) Status(name string) (Status, bool) {
	m.mu.Lock()
	mp, ok := m.proxies[name]
	last, hasLast := m.last[name]
	m.mu.Unlock()
	if ok {
		if p := mp.current(); p != nil {
			return p.Status(), true
		}
		return Status{Name: name, State: StateStarting, Since: time.Now()}, true
	}
	if !hasLast {
		last = Status{Name: name, State: StateStopped}
	}
	return last, false
}

// Statuses returns the status of every running proxy, by name.
func (m *Manager) Statuses() []Status {
	m.mu.Lock()
	names := make([]string, 0, len(m.proxies))
	for n := range m.proxies {
		names = append(names, n)
	}
	m.mu.Unlock()
	slices.Sort(names)
	out := make([]Status, 0, len(names))
	for _, n := range names {
		if st, ok := m.Status(n); ok {
			out = append(out, st)
		}
	}
	return out
}

// Close stops every proxy (in parallel, each gracefully within ctx and at
// most 5 s) and refuses new ones.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	names := make([]string, 0, len(m.proxies))
	for n := range m.proxies {
		names = append(names, n)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Go(func() { _ = m.stop(ctx, n) })
	}
	wg.Wait()
	m.draining.Wait()
	return nil
}

// changed schedules an event for mp: at once for state changes, coalesced
// for counters.
func (m *Manager) changed(mp *managed, immediate bool) {
	if immediate {
		m.publish(mp.name)
		return
	}
	if mp.pending.CompareAndSwap(false, true) {
		time.AfterFunc(m.opts.Coalesce, func() {
			mp.pending.Store(false)
			m.publish(mp.name)
		})
	}
}

// publish marks name changed for every subscriber.
func (m *Manager) publish(name string) {
	m.mu.Lock()
	subs := make([]*subscriber, 0, len(m.subs))
	for s := range m.subs {
		subs = append(subs, s)
	}
	m.mu.Unlock()
	for _, s := range subs {
		s.mark(name)
	}
}

// subscriber delivers events to one channel, coalesced per proxy name: a
// slow reader gets the latest status of each changed proxy, never a backlog.
type subscriber struct {
	m      *Manager
	out    chan Event
	signal chan struct{}
	done   chan struct{}

	mu    sync.Mutex
	order []string
	dirty map[string]bool
}

func (s *subscriber) mark(name string) {
	s.mu.Lock()
	if !s.dirty[name] {
		s.dirty[name] = true
		s.order = append(s.order, name)
	}
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *subscriber) run() {
	defer close(s.out)
	for {
		select {
		case <-s.done:
			return
		case <-s.signal:
		}
		for {
			s.mu.Lock()
			if len(s.order) == 0 {
				s.mu.Unlock()
				break
			}
			name := s.order[0]
			s.order = s.order[1:]
			delete(s.dirty, name)
			s.mu.Unlock()
			st, _ := s.m.Status(name)
			select {
			case s.out <- Event{Status: st}:
			case <-s.done:
				return
			}
		}
	}
}

// Subscribe returns a channel of status events (buffered by buffer) and a
// cancel function that ends the subscription and closes the channel. The
// subscriber first gets the status of every running proxy. Events are
// coalesced per proxy, so a slow reader never blocks proxies.
func (m *Manager) Subscribe(buffer int) (<-chan Event, func()) {
	s := &subscriber{m: m, out: make(chan Event, max(buffer, 0)), signal: make(chan struct{}, 1), done: make(chan struct{}), dirty: map[string]bool{}}
	m.mu.Lock()
	m.subs[s] = struct{}{}
	names := make([]string, 0, len(m.proxies))
	for n := range m.proxies {
		names = append(names, n)
	}
	m.mu.Unlock()
	slices.Sort(names)
	for _, n := range names {
		s.mark(n)
	}
	go s.run()
	var once sync.Once
	return s.out, func() {
		once.Do(func() {
			m.mu.Lock()
			delete(m.subs, s)
			m.mu.Unlock()
			close(s.done)
		})
	}
}
