package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"keyport/app"
	"keyport/app/telemetry"
)

// The window's Core and the served Backend are one method set.
var (
	_ Backend = (*app.App)(nil)
	_ Backend = (*Client)(nil)
	_ Backend = (*fakeBackend)(nil)
)

// fakeBackend records every call as a line and answers with fixed values,
// for tests of the protocol itself.
type fakeBackend struct {
	mu       sync.Mutex
	calls    []string
	servers  []app.ServerView
	profiles []app.ProfileView
	catErr   string
	subs     map[chan app.Event]struct{}
	fail     error         // returned by every method that can fail
	block    chan struct{} // Tools waits for it or for its ctx
	ctxErr   chan error    // Tools reports why its ctx ended
	closed   bool
}

func newFake() *fakeBackend {
	return &fakeBackend{subs: map[chan app.Event]struct{}{}, ctxErr: make(chan error, 8)}
}

func (f *fakeBackend) record(format string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
	return f.fail
}

func (f *fakeBackend) lastCall() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return ""
	}
	return f.calls[len(f.calls)-1]
}

// change sets the servers, then publishes ev, as app.App does.
func (f *fakeBackend) change(servers []app.ServerView, catErr string, ev app.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.servers, f.catErr = servers, catErr
	for ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (f *fakeBackend) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakeBackend) Servers() []app.ServerView {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]app.ServerView(nil), f.servers...)
}

func (f *fakeBackend) CatalogError() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.catErr
}

func (f *fakeBackend) Subscribe() (<-chan app.Event, func()) {
	ch := make(chan app.Event, 64)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}
}

func (f *fakeBackend) SetProxyEnabled(_ context.Context, name string, on bool) error {
	return f.record("SetProxyEnabled %s %v", name, on)
}
func (f *fakeBackend) SetSecret(name, kind, value string) error {
	return f.record("SetSecret %s %s %s", name, kind, value)
}
func (f *fakeBackend) ClearSecrets(name string) error { return f.record("ClearSecrets %s", name) }
func (f *fakeBackend) SignIn(_ context.Context, name string, openURL func(string) error) error {
	if err := f.record("SignIn %s", name); err != nil {
		return err
	}
	return openURL("https://auth.example.com/authorize?server=" + name)
}
func (f *fakeBackend) SetToolPolicy(name string, allow, deny []string) error {
	return f.record("SetToolPolicy %s %q %q", name, allow, deny)
}
func (f *fakeBackend) Tools(ctx context.Context, name string) ([]app.Tool, error) {
	if err := f.record("Tools %s", name); err != nil {
		return nil, err
	}
	if name == "panic" {
		panic("the tool list exploded")
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			f.ctxErr <- ctx.Err()
			return nil, ctx.Err()
		}
	}
	return []app.Tool{{Name: "search", Description: "search things", Allowed: true}, {Name: "delete_all"}}, nil
}
func (f *fakeBackend) CheckPolicy(allow, deny, tools []string) ([]string, error) {
	if err := f.record("CheckPolicy %q %q %q", allow, deny, tools); err != nil {
		return nil, err
	}
	return tools[:min(1, len(tools))], nil
}
func (f *fakeBackend) ToolReview(name string) (app.ToolReview, error) {
	if err := f.record("ToolReview %s", name); err != nil {
		return app.ToolReview{}, err
	}
	return app.ToolReview{Server: name, Mode: "hold", Approved: 1, Changes: []app.ToolChange{{Tool: "search", Kind: "changed",
		OldHash: "sha256:aa", NewHash: "sha256:bb", Old: app.ToolText{Description: "old"}, New: app.ToolText{Description: "new"},
		DescriptionDiff: []app.DiffRow{{Op: "~", Old: "old", New: "new"}}, Flags: []string{"instruction: x"},
		Seen: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}}}, nil
}
func (f *fakeBackend) ApproveTools(name string, tools []string, all bool) ([]app.ToolDecision, error) {
	if err := f.record("ApproveTools %s %q %v", name, tools, all); err != nil {
		return nil, err
	}
	return []app.ToolDecision{{Tool: "search", OldHash: "sha256:aa", NewHash: "sha256:bb"}}, nil
}
func (f *fakeBackend) BlockTools(name string, tools []string, all bool) ([]app.ToolDecision, error) {
	if err := f.record("BlockTools %s %q %v", name, tools, all); err != nil {
		return nil, err
	}
	return []app.ToolDecision{{Tool: "search", NewHash: "sha256:bb"}}, nil
}
func (f *fakeBackend) ResetPins(name string) (int, error) {
	if err := f.record("ResetPins %s", name); err != nil {
		return 0, err
	}
	return 3, nil
}
func (f *fakeBackend) Audit(name string, n int) ([]app.AuditEntry, error) {
	if err := f.record("Audit %s %d", name, n); err != nil {
		return nil, err
	}
	return []app.AuditEntry{{Time: time.Date(2025, 3, 1, 12, 0, 0, 5, time.UTC), Event: "request",
		Method: "tools/call", Tool: "search", Outcome: "ok", Duration: 1500 * time.Microsecond,
		Raw: `{"event":"request"}`}}, nil
}
func (f *fakeBackend) AuditPath(name string) string {
	f.record("AuditPath %s", name)
	return "/audit/" + name + ".jsonl"
}
func (f *fakeBackend) Clients(server string) []app.ClientView {
	f.record("Clients %s", server)
	return []app.ClientView{{ID: "cursor", Name: "Cursor", Path: "/home/u/.cursor/mcp.json", Detected: true,
		State: app.ClientStale, Detail: "port differs", CanUndo: true}}
}
func (f *fakeBackend) PreviewClient(clientID, server string, on bool) (app.ClientChange, error) {
	err := f.record("PreviewClient %s %s %v", clientID, server, on)
	return app.ClientChange{Path: "/p/" + clientID, Diff: "+ " + server}, err
}
func (f *fakeBackend) ApplyClient(clientID, server string, on bool) (app.ClientChange, error) {
	err := f.record("ApplyClient %s %s %v", clientID, server, on)
	return app.ClientChange{Path: "/p/" + clientID, Diff: "+ " + server, Wrote: true}, err
}
func (f *fakeBackend) UndoClient(clientID string) error { return f.record("UndoClient %s", clientID) }
func (f *fakeBackend) AddServer(s app.NewServer) error {
	return f.record("AddServer %s %s %s %v %v %v", s.Name, s.URL, s.AuthType, s.Labels, s.Headers, s.Secrets)
}
func (f *fakeBackend) RemoveServer(name string) error { return f.record("RemoveServer %s", name) }
func (f *fakeBackend) SearchRegistry(_ context.Context, query string) ([]app.RegistryResult, error) {
	if err := f.record("SearchRegistry %s", query); err != nil {
		return nil, err
	}
	return []app.RegistryResult{{ID: "io.example/" + query, Name: query, URL: "https://{tenant}.example.com/mcp",
		Questions: []app.RegistryQuestion{{Key: "tenant", Required: true, Choices: []string{"a", "b"}}}}}, nil
}
func (f *fakeBackend) ImportFromRegistry(_ context.Context, r app.RegistryResult, secrets map[string]string) error {
	return f.record("ImportFromRegistry %s %v", r.ID, secrets)
}
func (f *fakeBackend) SetDemoHidden(hidden bool) error { return f.record("SetDemoHidden %v", hidden) }
func (f *fakeBackend) Telemetry() telemetry.Status {
	f.record("Telemetry")
	return telemetry.Status{Enabled: true, Endpoint: "http://127.0.0.1:4318"}
}
func (f *fakeBackend) Autostart() bool {
	f.record("Autostart")
	return true
}
func (f *fakeBackend) SetAutostart(on bool) error { return f.record("SetAutostart %v", on) }
func (f *fakeBackend) WindowPrefs() app.WindowPrefs {
	f.record("WindowPrefs")
	return app.WindowPrefs{Width: 1200, Height: 760, Split: 0.4}
}
func (f *fakeBackend) SetWindowPrefs(p app.WindowPrefs) error {
	return f.record("SetWindowPrefs %gx%g %g", p.Width, p.Height, p.Split)
}
func (f *fakeBackend) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// shortDir is a temp dir short enough for a Unix socket path.
func shortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "kpr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// served serves b on a fresh socket and returns the server and its path.
func served(t testing.TB, b Backend, opts ServeOptions) (*Server, string) {
	t.Helper()
	dir := shortDir(t)
	ln, err := Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = quietLog
	}
	s := Serve(ln, b, opts)
	t.Cleanup(func() { s.Close() })
	return s, SocketPath(dir)
}

func dial(t *testing.T, path string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn is a connection that speaks the protocol by hand.
func rawConn(t *testing.T, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var errFake = errors.New(`server "nope" is not in servers.yaml: add it first`)

func (f *fakeBackend) Profiles() []app.ProfileView {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]app.ProfileView(nil), f.profiles...)
}
func (f *fakeBackend) SetProfileEnabled(_ context.Context, name string, on bool) error {
	return f.record("SetProfileEnabled %s %v", name, on)
}
func (f *fakeBackend) SetProfile(p app.NewProfile, create bool) error {
	return f.record("SetProfile %s %d %v", p.Name, len(p.Servers), create)
}
func (f *fakeBackend) RemoveProfile(name string) error { return f.record("RemoveProfile %s", name) }
func (f *fakeBackend) ProfileTools(_ context.Context, server string) ([]app.ProfileTool, error) {
	if err := f.record("ProfileTools %s", server); err != nil {
		return nil, err
	}
	return []app.ProfileTool{{Name: "search", Bytes: 120}}, nil
}
