package proxymgr

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/proxymgr/peercred"
)

// bearer adds a local access token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// TestLocalTransport: a request LocalTransport hands to a proxy of this
// process meets every stage a request over TCP meets — the local token,
// the Host check, the tool policy, the injected credential — and the
// same-user stage takes it for this user; no TCP request can be taken for
// one: here every TCP connection looks like another user's, and is
// refused, while the same conversation in process is served. A stopped
// proxy is not reached in process: the request goes over TCP and is
// refused.
func TestLocalTransport(t *testing.T) {
	// Not parallel: lookupPeer is the process's.
	lookupPeer = func(net.Conn) peercred.Verdict {
		return peercred.Verdict{Kind: peercred.Other, UID: 65534, Owner: "uid 65534"}
	}
	t.Cleanup(func() { lookupPeer = peercred.CheckConn })
	const token = "local-token-in-process"
	up := newUpstream(t, false)
	p := startProxy(t, Config{Upstream: up.url(), LocalToken: token, Policy: ToolPolicy{Deny: []string{"delete_*"}},
		Credentials: func(context.Context) (http.Header, error) {
			return http.Header{"Authorization": {"Bearer " + ownerToken}}, nil
		}})
	post := func(client *http.Client, host, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, p.URL(), strings.NewReader(initBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	local := &http.Client{Transport: LocalTransport(nil)}

	if status, body := post(http.DefaultClient, "", token); status != http.StatusForbidden || !strings.Contains(body, msgForeignPeer) {
		t.Errorf("over TCP from another user: %d %s", status, body)
	}
	if status, body := post(local, "", ""); status != http.StatusForbidden || !strings.Contains(body, "local access token") {
		t.Errorf("in process without the local token: %d %s", status, body)
	}
	if status, body := post(local, "evil.example:"+p.portStr, token); status != http.StatusForbidden || !strings.Contains(body, "DNS rebinding") {
		t.Errorf("in process with a foreign Host: %d %s", status, body)
	}
	if n := len(up.recorded()); n != 0 {
		t.Fatalf("the upstream received %d requests from refused clients", n)
	}

	// A whole session in process: streams, the policy, the credential.
	c := mcp.NewClient(&mcp.Implementation{Name: "in-process", Version: "1"}, nil)
	cs, err := c.Connect(ctxT(t), &mcp.StreamableClientTransport{Endpoint: p.URL(), HTTPClient: &http.Client{Transport: bearer{token, LocalTransport(nil)}}}, nil)
	if err != nil {
		t.Fatalf("connect in process: %v", err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "in process"}})
	if err != nil || resultText(t, res) != "in process" {
		t.Fatalf("echo in process: %v %v", res, err)
	}
	if res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{"n": 3}, Meta: mcp.Meta{"progressToken": "p"}}); err != nil || resultText(t, res) != "done 3" {
		t.Fatalf("an event stream in process: %v %v", res, err)
	}
	if _, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "delete_repo", Arguments: map[string]any{"text": "x"}}); err == nil || !strings.Contains(err.Error(), "not allowed by the tool policy") {
		t.Errorf("a denied tool in process: %v", err)
	}
	if up.callCount("delete_repo") != 0 {
		t.Error("the upstream ran a denied tool")
	}
	for _, r := range up.recorded() {
		if got := r.Header.Get("Authorization"); got != "Bearer "+ownerToken {
			t.Errorf("the upstream got Authorization %q, want the injected credential", got)
		}
	}

	// Stopped: nothing in process answers; the base transport is refused.
	cs.Close()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, p.URL(), strings.NewReader(initBody))
	if _, err := local.Do(req); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("a stopped proxy in process: %v, want connection refused", err)
	}
}
