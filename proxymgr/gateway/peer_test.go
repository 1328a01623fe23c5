package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/proxymgr/peercred"
	"keyport/proxymgr/peercred/peertest"
)

// TestOtherUserIsRefused: a client running as another OS user gets 403
// from the profile endpoint for every request (initialize, a call, the
// health endpoint); no member server runs anything; the owner's same
// client works.
func TestOtherUserIsRefused(t *testing.T) {
	peertest.RequireRoot(t)
	if s := peercred.Supported(); !s.Active {
		t.Skipf("no peer check on this system: %v", s)
	}
	t.Parallel()
	a := newServer(t, "alpha", nil, func(s *server, m *mcp.Server) { addEcho(s, m, "echo") })
	g := startGateway(t, Config{Members: []Member{a.member()}})
	const marker = "sent-by-uid-65534"
	calls := []peertest.Request{
		{URL: g.URL(), Body: `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`},
		{URL: g.URL(), Header: map[string]string{"Mcp-Protocol-Version": "2025-11-25"}, Body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`},
		{URL: g.URL(), Header: map[string]string{"Mcp-Protocol-Version": "2025-11-25"},
			Body: `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + marker + `"}}}`},
	}
	attack := append(calls, peertest.Request{Method: http.MethodGet, URL: "http://127.0.0.1:" + g.portStr + HealthPath})
	for i, r := range peertest.Do(t, peertest.Nobody, attack...) {
		if r.Status != http.StatusForbidden || !strings.Contains(r.Body, "another user") {
			t.Errorf("request %d of another user: %d %s", i, r.Status, r.Body)
		}
	}
	if ran := a.ranTools(); len(ran) != 0 {
		t.Fatalf("another user's call ran on the member: %v", ran)
	}
	if n := g.ForeignPeers(); n != int64(len(attack)) {
		t.Errorf("refused %d requests, want %d", n, len(attack))
	}
	got := peertest.Do(t, peertest.Owner, calls...)
	if got[0].Status != 200 || got[2].Status != 200 || !strings.Contains(got[2].Body, "alpha/echo:"+marker) {
		t.Fatalf("the owner's client: %+v", got)
	}
}
