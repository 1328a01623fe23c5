package remote

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"keyport/app"
	"keyport/app/telemetry"
)

// quickTimeout bounds the calls the GUI makes on its own goroutine and that
// cannot report an error (Clients, AuditPath, Autostart, WindowPrefs).
const quickTimeout = 2 * time.Second

// quitTimeout bounds Quit.
const quitTimeout = 10 * time.Second

// Client is the core as seen from the window process: it implements
// ui.Core (every Backend method) over a connection to a Server, plus Quit,
// Done and Err. It is safe for concurrent use.
//
// Servers and CatalogError read a local snapshot that the server pushes
// with every event, refreshed before the event reaches subscribers, so they
// never wait on the network. A method taking a context stops waiting when
// the context ends and tells the server to cancel the request; one without
// waits for the answer or for the connection to end (a keychain prompt may
// take the user a while). Clients, AuditPath and Autostart, which the GUI
// may call on its own goroutine and which cannot fail, give up after two
// seconds and return their zero value.
type Client struct {
	conn net.Conn
	wmu  sync.Mutex // one frame at a time

	mu       sync.Mutex
	nextID   uint64
	calls    map[uint64]chan frame // requests waiting for their answer
	subs     map[chan app.Event]struct{}
	servers  []app.ServerView // the newest snapshot; handed out as copies
	profiles []app.ProfileView
	catErr   string
	seq      uint64 // the newest snapshot's number
	err      error  // why the connection ended; nil while it is up
	closing  bool   // Close was called

	done       chan struct{} // closed when the connection ends
	readerDone chan struct{}
	raised     chan struct{} // the server asked for the window
}

// Dial connects to the Server on socketPath and waits for its first
// snapshot, so Servers answers at once. It fails when nothing listens
// there (Keyport's background app is not running), when the socket belongs
// to another user, or when the server speaks another protocol version.
func Dial(ctx context.Context, socketPath string) (*Client, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socketPath)
	if err != nil {
		return nil, fmt.Errorf("connect to Keyport's background app at %s (is Keyport running?): %w", socketPath, err)
	}
	// Checked after connecting: a file swapped in before the check is
	// caught, and another user cannot swap ours out of a 0700 or sticky dir.
	if err := checkOwner(socketPath); err != nil {
		conn.Close()
		return nil, err
	}
	c := &Client{conn: conn, calls: map[uint64]chan frame{}, subs: map[chan app.Event]struct{}{},
		done: make(chan struct{}), readerDone: make(chan struct{}), raised: make(chan struct{}, 1)}
	ready := make(chan error, 1)
	go c.read(ready)
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = fmt.Errorf("connect to Keyport's background app at %s: no answer: %w", socketPath, ctx.Err())
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// read handles the server's frames until the connection ends. It reports
// on ready whether the first frame was a good hello.
func (c *Client) read(ready chan<- error) {
	defer close(c.readerDone)
	in := bufio.NewScanner(c.conn)
	in.Buffer(make([]byte, 0, 64<<10), maxResponse)
	greeted := false
	fail := func(err error) {
		c.conn.Close()
		c.finish(err)
		if !greeted {
			ready <- c.Err()
		}
	}
	for in.Scan() {
		var f frame
		if err := json.Unmarshal(in.Bytes(), &f); err != nil {
			fail(fmt.Errorf("Keyport's background app sent a garbled frame (%v); launch Keyport again", err))
			return
		}
		if !greeted {
			if f.Hello == nil || f.Snapshot == nil {
				fail(errors.New("the socket did not answer as Keyport's background app; quit Keyport and launch it again"))
				return
			}
			if f.Hello.Protocol != protocolVersion {
				fail(fmt.Errorf("Keyport's background app speaks protocol %d, this window %d: Keyport was "+
					"updated while running; quit Keyport and launch it again", f.Hello.Protocol, protocolVersion))
				return
			}
			if err := c.update(f.Snapshot, nil); err != nil {
				fail(err)
				return
			}
			greeted = true
			ready <- nil
			continue
		}
		switch {
		case f.ID != 0:
			if f.Snapshot != nil {
				if err := c.update(f.Snapshot, nil); err != nil {
					fail(err)
					return
				}
			}
			c.mu.Lock()
			ch, ok := c.calls[f.ID]
			delete(c.calls, f.ID)
			c.mu.Unlock()
			if ok {
				ch <- f // buffered; the caller may have given up
			}
		case f.Bye:
			fail(ErrBackendQuit)
			return
		case f.Raise:
			select {
			case c.raised <- struct{}{}:
			default: // one is pending already
			}
		case f.Snapshot != nil:
			if err := c.update(f.Snapshot, f.Events); err != nil {
				fail(err)
				return
			}
		}
	}
	fail(ErrBackendGone)
}

// update stores a snapshot, then forwards its events, so a subscriber that
// re-reads on an event sees at least the state it announces. A subscriber
// that is behind misses events, as with app.App: it re-reads on the ones
// it has.
func (c *Client) update(s *snapshot, events []app.Event) error {
	var servers []app.ServerView
	if err := json.Unmarshal(s.Servers, &servers); err != nil {
		return fmt.Errorf("Keyport's background app sent a garbled server list (%v); launch Keyport again", err)
	}
	var profiles []app.ProfileView
	if len(s.Profiles) > 0 {
		if err := json.Unmarshal(s.Profiles, &profiles); err != nil {
			return fmt.Errorf("Keyport's background app sent a garbled profile list (%v); launch Keyport again", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.Seq >= c.seq { // an older one was overtaken: keep the newer
		c.servers, c.catErr, c.seq, c.profiles = servers, s.CatalogError, s.Seq, profiles
	}
	for _, ev := range events {
		for ch := range c.subs {
			select {
			case ch <- ev:
			default:
			}
		}
	}
	return nil
}

// finish records why the connection ended, once.
func (c *Client) finish(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	if c.closing {
		err = ErrClosed
	}
	c.err = err
	c.calls = map[uint64]chan frame{}
	close(c.done)
}

// Done is closed when the connection ends: the user quit Keyport (Err is
// ErrBackendQuit), the server vanished (ErrBackendGone: it crashed or was
// killed), or Close was called (ErrClosed).
func (c *Client) Done() <-chan struct{} { return c.done }

// Raised receives when the tray process asks the window to come to the
// front. Requests that arrive while one is pending merge into it.
func (c *Client) Raised() <-chan struct{} { return c.raised }

// Err is why the connection ended, or nil while it is up.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection, and only it: the server's proxies go on
// running (closing the window leaves Keyport in the tray). Requests in
// flight are cancelled on the server. It is safe to call more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.conn.Close()
	<-c.readerDone
	return nil
}

// Quit asks the server's process to quit (ServeOptions.OnQuit): the window's
// "Quit Keyport". The connection then ends; Done is closed.
func (c *Client) Quit() error {
	ctx, cancel := context.WithTimeout(context.Background(), quitTimeout)
	defer cancel()
	return c.call(ctx, "Quit", noArgs{}, nil)
}

// call sends a request and waits for its answer into out (nil: none), for
// ctx, or for the connection to end.
func (c *Client) call(ctx context.Context, method string, params, out any) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("%s: encode the request: %w", method, err)
	}
	if len(p) > maxRequest-1024 {
		return fmt.Errorf("%s: the request is larger than %d bytes", method, maxRequest)
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.nextID++
	id := c.nextID
	ch := make(chan frame, 1)
	c.calls[id] = ch
	c.mu.Unlock()

	if err := c.write(frame{ID: id, Method: method, Params: p}); err != nil {
		return err
	}
	select {
	case f := <-ch:
		if f.Err != nil {
			return errors.New(*f.Err)
		}
		if out != nil {
			if err := json.Unmarshal(f.Result, out); err != nil {
				return fmt.Errorf("%s: garbled answer from Keyport's background app: %w", method, err)
			}
		}
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.calls, id)
		c.mu.Unlock()
		_ = c.write(frame{Cancel: id}) // best effort: the server stops the work
		return ctx.Err()
	case <-c.done:
		return c.Err()
	}
}

// write sends one frame. A failed write ends the connection; the error is
// then why it ended.
func (c *Client) write(f frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	c.wmu.Lock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err = c.conn.Write(b)
	c.wmu.Unlock()
	if err != nil {
		c.conn.Close()
		<-c.done // the reader sees the closed connection
		return c.Err()
	}
	return nil
}

// quick runs a call the GUI makes on its own goroutine: briefly.
func (c *Client) quick(method string, params, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), quickTimeout)
	defer cancel()
	return c.call(ctx, method, params, out)
}

// Servers returns the last snapshot of the catalog with status, sorted by
// name. It does not touch the network. Each call returns its own copy, as
// app.App does: a caller may change it freely.
func (c *Client) Servers() []app.ServerView {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cloneServers(c.servers)
}

// cloneServers copies views down to their maps and slices. A field of a
// reference type added to ServerView must be cloned here too
// (TestServersAreCopies finds one that is not).
func cloneServers(vs []app.ServerView) []app.ServerView {
	if vs == nil {
		return nil
	}
	out := slices.Clone(vs)
	for i := range out {
		v := &out[i]
		v.Labels = maps.Clone(v.Labels)
		v.Allow = slices.Clone(v.Allow)
		v.Deny = slices.Clone(v.Deny)
		v.ManagedDeny = slices.Clone(v.ManagedDeny)
		v.Credential.Missing = slices.Clone(v.Credential.Missing)
		v.Credential.Kinds = slices.Clone(v.Credential.Kinds)
	}
	return out
}

// CatalogError is the servers.yaml error of the last snapshot, or "".
func (c *Client) CatalogError() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.catErr
}

// Subscribe delivers the server's events, each after Servers and
// CatalogError show the state it announces. cancel ends the subscription
// and closes the channel. When the connection ends no more events come;
// watch Done for that.
func (c *Client) Subscribe() (events <-chan app.Event, cancel func()) {
	ch := make(chan app.Event, 64)
	c.mu.Lock()
	c.subs[ch] = struct{}{}
	c.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			c.mu.Lock()
			delete(c.subs, ch)
			close(ch)
			c.mu.Unlock()
		})
	}
}

// SetProxyEnabled turns a server's persistent proxy on or off.
func (c *Client) SetProxyEnabled(ctx context.Context, name string, on bool) error {
	return c.call(ctx, "SetProxyEnabled", proxyArgs{Name: name, On: on}, nil)
}

// SetSecret stores a credential item; the value travels only inside the
// socket.
func (c *Client) SetSecret(name, kind, value string) error {
	return c.call(context.Background(), "SetSecret", secretArgs{Name: name, Kind: kind, Value: value}, nil)
}

// ClearSecrets removes every credential of a server from the keychain.
func (c *Client) ClearSecrets(name string) error {
	return c.call(context.Background(), "ClearSecrets", nameArgs{Name: name}, nil)
}

// SignIn runs the OAuth browser flow for a server in the server's process,
// which opens the browser itself (ServeOptions.OpenURL): openURL is ignored,
// as a function cannot cross the socket; both processes run in the same
// desktop session, so the same browser opens. Cancelling ctx, or closing
// the client, stops the sign-in.
func (c *Client) SignIn(ctx context.Context, name string, _ func(string) error) error {
	return c.call(ctx, "SignIn", nameArgs{Name: name}, nil)
}

// SetToolPolicy replaces a server's allow and deny patterns.
func (c *Client) SetToolPolicy(name string, allow, deny []string) error {
	return c.call(context.Background(), "SetToolPolicy", policyArgs{Name: name, Allow: allow, Deny: deny}, nil)
}

// Tools lists the server's tools through its proxy, marked allowed or not.
func (c *Client) Tools(ctx context.Context, name string) ([]app.Tool, error) {
	var v []app.Tool
	err := c.call(ctx, "Tools", nameArgs{Name: name}, &v)
	return v, err
}

// CheckPolicy returns the tools of list a policy would allow, or a pattern
// error.
func (c *Client) CheckPolicy(allow, deny []string, tools []string) ([]string, error) {
	var v []string
	err := c.call(context.Background(), "CheckPolicy", checkArgs{Allow: allow, Deny: deny, Tools: tools}, &v)
	return v, err
}

// ToolReview is a server's tool pinning: the tools held for review.
func (c *Client) ToolReview(name string) (app.ToolReview, error) {
	var v app.ToolReview
	err := c.call(context.Background(), "ToolReview", nameArgs{Name: name}, &v)
	return v, err
}

// ApproveTools approves held tools (all of them with all).
func (c *Client) ApproveTools(name string, tools []string, all bool) ([]app.ToolDecision, error) {
	var v []app.ToolDecision
	err := c.call(context.Background(), "ApproveTools", pinArgs{Name: name, Tools: tools, All: all}, &v)
	return v, err
}

// BlockTools keeps held tools blocked (all of them with all).
func (c *Client) BlockTools(name string, tools []string, all bool) ([]app.ToolDecision, error) {
	var v []app.ToolDecision
	err := c.call(context.Background(), "BlockTools", pinArgs{Name: name, Tools: tools, All: all}, &v)
	return v, err
}

// ResetPins forgets a server's approved tool definitions.
func (c *Client) ResetPins(name string) (int, error) {
	var v int
	err := c.call(context.Background(), "ResetPins", nameArgs{Name: name}, &v)
	return v, err
}

// Audit returns the newest n audit entries of a server, oldest first.
func (c *Client) Audit(name string, n int) ([]app.AuditEntry, error) {
	var v []app.AuditEntry
	err := c.call(context.Background(), "Audit", auditArgs{Name: name, N: n}, &v)
	return v, err
}

// AuditPath is the server's audit log file, or "" when the server does not
// answer within a moment.
func (c *Client) AuditPath(name string) string {
	var v string
	_ = c.quick("AuditPath", nameArgs{Name: name}, &v)
	return v
}

// Clients returns every known client's state for a server, or nil when the
// server does not answer within a moment (it is called on the GUI
// goroutine).
func (c *Client) Clients(server string) []app.ClientView {
	var v []app.ClientView
	if err := c.quick("Clients", clientArgs{Server: server}, &v); err != nil {
		return nil
	}
	return v
}

// PreviewClient shows the change Install (on) or Remove (off) would make.
func (c *Client) PreviewClient(clientID, server string, on bool) (app.ClientChange, error) {
	var v app.ClientChange
	err := c.call(context.Background(), "PreviewClient", clientArgs{ClientID: clientID, Server: server, On: on}, &v)
	return v, err
}

// ApplyClient installs (on) or removes (off) the server's entry.
func (c *Client) ApplyClient(clientID, server string, on bool) (app.ClientChange, error) {
	var v app.ClientChange
	err := c.call(context.Background(), "ApplyClient", clientArgs{ClientID: clientID, Server: server, On: on}, &v)
	return v, err
}

// UndoClient restores the client's file to before Keyport's last change.
func (c *Client) UndoClient(clientID string) error {
	return c.call(context.Background(), "UndoClient", clientArgs{ClientID: clientID}, nil)
}

// AddServer adds a server to servers.yaml and its secrets to the keychain.
func (c *Client) AddServer(s app.NewServer) error {
	return c.call(context.Background(), "AddServer", s, nil)
}

// RemoveServer removes a server, its secrets and its client entries.
func (c *Client) RemoveServer(name string) error {
	return c.call(context.Background(), "RemoveServer", nameArgs{Name: name}, nil)
}

// SearchRegistry searches the configured MCP registries.
func (c *Client) SearchRegistry(ctx context.Context, query string) ([]app.RegistryResult, error) {
	var v []app.RegistryResult
	err := c.call(ctx, "SearchRegistry", queryArgs{Query: query}, &v)
	return v, err
}

// ImportFromRegistry imports a registry server with the given secrets.
func (c *Client) ImportFromRegistry(ctx context.Context, r app.RegistryResult, secrets map[string]string) error {
	return c.call(ctx, "ImportFromRegistry", importArgs{Result: r, Secrets: secrets}, nil)
}

// SetDemoHidden hides or shows the built-in demo server.
func (c *Client) SetDemoHidden(hidden bool) error {
	return c.call(context.Background(), "SetDemoHidden", onArgs{On: hidden}, nil)
}

// Telemetry is the export's status; zero when the server does not answer
// within a moment.
func (c *Client) Telemetry() telemetry.Status {
	var v telemetry.Status
	_ = c.quick("Telemetry", noArgs{}, &v)
	return v
}

// Autostart reports whether Keyport starts at login; false when the server
// does not answer within a moment.
func (c *Client) Autostart() bool {
	var v bool
	_ = c.quick("Autostart", noArgs{}, &v)
	return v
}

// SetAutostart sets whether Keyport starts at login.
func (c *Client) SetAutostart(on bool) error {
	return c.call(context.Background(), "SetAutostart", onArgs{On: on}, nil)
}

// WindowPrefs returns the window's recorded size and divider position;
// zero (the window picks its own) when the server does not answer within
// a moment.
func (c *Client) WindowPrefs() app.WindowPrefs {
	var v app.WindowPrefs
	_ = c.quick("WindowPrefs", noArgs{}, &v)
	return v
}

// SetWindowPrefs records the window's size and divider position.
func (c *Client) SetWindowPrefs(p app.WindowPrefs) error {
	return c.call(context.Background(), "SetWindowPrefs", p, nil)
}

// Profiles returns the last snapshot's profiles (a deep copy).
func (c *Client) Profiles() []app.ProfileView {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, _ := json.Marshal(c.profiles)
	var out []app.ProfileView
	_ = json.Unmarshal(b, &out)
	return out
}

// SetProfileEnabled turns a profile's endpoint on or off.
func (c *Client) SetProfileEnabled(ctx context.Context, name string, on bool) error {
	return c.call(ctx, "SetProfileEnabled", proxyArgs{Name: name, On: on}, nil)
}

// SetProfile writes a profile into servers.yaml.
func (c *Client) SetProfile(p app.NewProfile, create bool) error {
	return c.quick("SetProfile", profileArgs{Profile: p, Create: create}, nil)
}

// RemoveProfile removes a profile and its client entries.
func (c *Client) RemoveProfile(name string) error {
	return c.quick("RemoveProfile", nameArgs{Name: name}, nil)
}

// ProfileTools lists the tools a server's policy allows, with their sizes.
func (c *Client) ProfileTools(ctx context.Context, server string) ([]app.ProfileTool, error) {
	var out []app.ProfileTool
	err := c.call(ctx, "ProfileTools", nameArgs{Name: server}, &out)
	return out, err
}
