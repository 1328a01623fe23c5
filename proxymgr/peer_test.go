package proxymgr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"keyport/proxymgr/peercred"
	"keyport/proxymgr/peercred/peertest"
)

const ownerToken = "owner-secret-token-7f3a"

// mcpCall is the MCP conversation of a client calling echo with text.
func mcpCall(url, text string) []peertest.Request {
	proto := map[string]string{"Mcp-Protocol-Version": "2025-11-25"}
	return []peertest.Request{
		{URL: url, Body: initBody},
		{URL: url, Header: proto, Body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`},
		{URL: url, Header: proto, Body: `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + text + `"}}}`},
	}
}

// assertForeignRefused checks that a response is the same-user stage's 403.
func assertForeignRefused(t *testing.T, what string, r peertest.Response) {
	t.Helper()
	if r.Status != http.StatusForbidden {
		t.Errorf("%s: status %d (%s), want 403: %s", what, r.Status, r.Err, r.Body)
		return
	}
	var msg struct {
		JSONRPC string `json:"jsonrpc"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.Body), &msg); err != nil || msg.JSONRPC != "2.0" || msg.Error.Code != codeInvalidRequest {
		t.Errorf("%s: body %q is not a JSON-RPC error", what, r.Body)
	}
	if msg.Error.Message != msgForeignPeer {
		t.Errorf("%s: message %q, want %q", what, msg.Error.Message, msgForeignPeer)
	}
	if r.Header.Get(HealthServerHeader) != "" || strings.Contains(r.Body, "testsrv") {
		t.Errorf("%s: the refusal names the server: %v %s", what, r.Header, r.Body)
	}
}

// TestOtherUserIsRefused is issue 13's reproduction from the attacker's
// side: a client of another OS user (nobody) talks to a running proxy that
// injects its owner's bearer token. It must get 403 for everything (the
// health endpoint too), even when it sends and hangs up without reading,
// and the upstream must receive nothing from it; the same client run as
// the owner works and the upstream sees the injected credential.
func TestOtherUserIsRefused(t *testing.T) {
	peertest.RequireRoot(t)
	if s := peercred.Supported(); !s.Active {
		t.Skipf("no peer check on this system: %v", s)
	}
	t.Parallel()
	up := newUpstream(t, false)
	p := startProxy(t, Config{Upstream: up.url(), Credentials: func(context.Context) (http.Header, error) {
		return http.Header{"Authorization": {"Bearer " + ownerToken}}, nil
	}})
	health := "http://" + p.Addr() + HealthPath

	const marker = "sent-by-uid-65534"
	attack := append(mcpCall(p.URL(), marker),
		peertest.Request{Method: http.MethodGet, URL: health},
		peertest.Request{Method: http.MethodGet, URL: p.URL(), Header: map[string]string{"Accept": "text/event-stream"}},
		peertest.Request{URL: p.URL(), CloseAfterSend: true, Header: map[string]string{"Mcp-Protocol-Version": "2025-11-25"},
			Body: `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + marker + `"}}}`},
	)
	got := peertest.Do(t, peertest.Nobody, attack...)
	for i, r := range got[:len(got)-1] {
		assertForeignRefused(t, "request "+attack[i].Method+" "+attack[i].URL, r)
	}
	// The fire-and-forget request was read and refused too (it is counted).
	want := int64(len(attack))
	deadline := time.Now().Add(5 * time.Second)
	for p.Status().Counters.ForeignPeers < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := p.Status().Counters.ForeignPeers; n != want {
		t.Errorf("ForeignPeers = %d, want %d", n, want)
	}
	if n := len(up.recorded()); n != 0 {
		t.Fatalf("the upstream received %d requests from another user's client: %+v", n, up.recorded())
	}
	if up.callCount("echo") != 0 {
		t.Fatal("another user's tools/call ran on the upstream")
	}

	// The same client as the owner.
	got = peertest.Do(t, peertest.Owner, mcpCall(p.URL(), "from-the-owner")...)
	if got[0].Status != 200 || got[1].Status != http.StatusAccepted || got[2].Status != 200 || !strings.Contains(got[2].Body, "from-the-owner") {
		t.Fatalf("the owner's client: %+v", got)
	}
	if up.callCount("echo") != 1 {
		t.Errorf("the owner's call reached the upstream %d times, want 1", up.callCount("echo"))
	}
	recs := up.recorded()
	if len(recs) != 3 {
		t.Fatalf("the upstream received %d requests, want the owner's 3", len(recs))
	}
	for _, r := range recs {
		if r.Header.Get("Authorization") != "Bearer "+ownerToken {
			t.Errorf("the upstream got Authorization %q, want the injected token", r.Header.Get("Authorization"))
		}
		if bytes.Contains(r.Body, []byte(marker)) {
			t.Errorf("the upstream received the other user's request: %s", r.Body)
		}
	}
	if p.Status().Counters.ForeignPeers != want {
		t.Errorf("the owner's requests were counted as foreign: %d", p.Status().Counters.ForeignPeers)
	}
}

// lockedBuffer is a log sink for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestForeignFloodLogsOnce: a flood of another user's requests writes one
// warning (with the peer's uid), not one per request, and no audit event.
func TestForeignFloodLogsOnce(t *testing.T) {
	peertest.RequireRoot(t)
	if s := peercred.Supported(); !s.Active {
		t.Skipf("no peer check on this system: %v", s)
	}
	t.Parallel()
	up := newUpstream(t, false)
	var logs lockedBuffer
	audit := t.TempDir() + "/audit.jsonl"
	p := startProxy(t, Config{Upstream: up.url(), Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Audit: AuditConfig{File: audit, LogList: true}})
	var flood []peertest.Request
	for range 50 {
		flood = append(flood, peertest.Request{URL: p.URL(), Body: initBody})
	}
	for _, r := range peertest.Do(t, peertest.Nobody, flood...) {
		if r.Status != http.StatusForbidden {
			t.Fatalf("status %d, want 403", r.Status)
		}
	}
	if n := strings.Count(logs.String(), "refused a connection of another user"); n != 1 {
		t.Errorf("%d warnings for 50 refused requests, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "peer_uid=65534") {
		t.Errorf("the warning does not name the peer's uid:\n%s", logs.String())
	}
	if p.Status().Counters.ForeignPeers != 50 {
		t.Errorf("ForeignPeers = %d, want 50", p.Status().Counters.ForeignPeers)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.Shutdown(ctx)
	b, err := os.ReadFile(audit)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if len(b) != 0 {
		t.Errorf("refused requests reached the audit log: %s", b)
	}
}

// TestPeerCheckOnAnotherServer: Proxy.ServeHTTP mounted on a server of the
// caller's looks up each request's connection itself.
func TestPeerCheckOnAnotherServer(t *testing.T) {
	peertest.RequireRoot(t)
	if s := peercred.Supported(); !s.Active {
		t.Skipf("no peer check on this system: %v", s)
	}
	t.Parallel()
	p, err := New(Config{Name: "testsrv", Upstream: "http://127.0.0.1:1/mcp", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(p)
	t.Cleanup(ts.Close)
	assertForeignRefused(t, "nobody", peertest.Do(t, peertest.Nobody, peertest.Request{URL: ts.URL + "/mcp", Body: initBody})[0])
	// The owner passes this stage (and meets the next: the proxy is not
	// started, so no Host is its own).
	r := peertest.Do(t, peertest.Owner, peertest.Request{URL: ts.URL + "/mcp", Body: initBody})[0]
	if r.Status != http.StatusForbidden || !strings.Contains(r.Body, "DNS rebinding") {
		t.Errorf("the owner: %d %s, want the Host check's 403", r.Status, r.Body)
	}
}

func TestPeerLogLimit(t *testing.T) {
	var g peerGate
	t0 := time.Now()
	if ok, n := g.admitLog(t0); !ok || n != 0 {
		t.Fatalf("first warning: %v %d", ok, n)
	}
	for i := range 5 {
		if ok, _ := g.admitLog(t0.Add(time.Duration(i) * time.Second)); ok {
			t.Fatalf("warning %d within the interval admitted", i+2)
		}
	}
	if ok, n := g.admitLog(t0.Add(peerLogInterval)); !ok || n != 5 {
		t.Fatalf("after the interval: %v, %d held back; want true, 5", ok, n)
	}
}
