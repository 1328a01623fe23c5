package proxymgr

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// scopeGate makes the upstream refuse tools/call with status unless the
// request carries "Authorization: Bearer " + want.
func scopeGate(u *upstream, status int, want string) {
	wr := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if bytes.Contains(body, []byte(`"tools/call"`)) && r.Header.Get("Authorization") != "Bearer "+want {
				if status == http.StatusForbidden {
					w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="admin"`)
				} else {
					w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				}
				http.Error(w, "not with this token", status)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	u.wrap.Store(&wr)
}

// toolCallsSeen returns the Authorization of each tools/call that reached
// the upstream.
func toolCallsSeen(u *upstream) []string {
	var out []string
	for _, r := range u.recorded() {
		if bytes.Contains(r.Body, []byte(`"tools/call"`)) {
			out = append(out, r.Header.Get("Authorization"))
		}
	}
	return out
}

// TestRenewRetriesOnceWithNewCredentials: a 403 (step-up) or a 401 whose
// hook has new credentials ready is sent upstream once more with them; the
// client gets the tool's result in its session, which goes on.
func TestRenewRetriesOnceWithNewCredentials(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusForbidden, http.StatusUnauthorized} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, false)
			scopeGate(up, status, "wide")
			var token atomic.Value
			token.Store("narrow")
			var hooked atomic.Int32
			hook := func(ctx context.Context, h, sent http.Header) error {
				hooked.Add(1)
				if Retried(ctx) {
					t.Error("the hook was asked again about the request it had renewed")
				}
				if sent.Get("Authorization") != "Bearer narrow" || h.Get("WWW-Authenticate") == "" {
					t.Errorf("hook got sent %q, challenge %q", sent.Get("Authorization"), h.Get("WWW-Authenticate"))
				}
				token.Store("wide") // the new sign-in
				return ErrRetryRequest
			}
			cfg := Config{Upstream: up.url(), Credentials: func(context.Context) (http.Header, error) {
				return http.Header{"Authorization": {"Bearer " + token.Load().(string)}}, nil
			}}
			if status == http.StatusForbidden {
				cfg.CredentialsForbidden = hook
			} else {
				cfg.CredentialsRejected = hook
			}
			p := startProxy(t, cfg)
			cs := connect(t, p.URL(), nil, "2025-11-25")
			res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "after step-up"}})
			if err != nil || res.IsError || resultText(t, res) != "after step-up" {
				t.Fatalf("tools/call: %v %+v", err, res)
			}
			if got := toolCallsSeen(up); strings.Join(got, ",") != "Bearer narrow,Bearer wide" || up.callCount("echo") != 1 || hooked.Load() != 1 {
				t.Errorf("the upstream saw tools/call with %q, ran echo %d times; hook called %d times", got, up.callCount("echo"), hooked.Load())
			}
			// The session survives: the next call goes straight through.
			if res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "again"}}); err != nil || res.IsError {
				t.Fatalf("next call: %v %+v", err, res)
			}
			if hooked.Load() != 1 {
				t.Errorf("hook called %d times", hooked.Load())
			}
		})
	}
}

// TestRenewNeverLoops: a hook that keeps saying it has new credentials
// gets one retry; the client then gets an error, never a loop.
func TestRenewNeverLoops(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusForbidden, http.StatusUnauthorized} {
		up := newUpstream(t, false)
		scopeGate(up, status, "never")
		var calls, retried atomic.Int32
		hook := func(ctx context.Context, _, _ http.Header) error {
			calls.Add(1)
			if Retried(ctx) {
				retried.Add(1)
			}
			return ErrRetryRequest
		}
		cfg := Config{Upstream: up.url(), Credentials: func(context.Context) (http.Header, error) {
			return http.Header{"Authorization": {"Bearer some"}}, nil
		}}
		if status == http.StatusForbidden {
			cfg.CredentialsForbidden = hook
		} else {
			cfg.CredentialsRejected = hook
		}
		p := startProxy(t, cfg)
		sid := initSession(t, p.URL())
		code, _, body := rawPost(t, p.URL(), map[string]string{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"},
			`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`)
		if n := len(toolCallsSeen(up)); n != 2 || calls.Load() != 2 || retried.Load() != 1 {
			t.Errorf("%d: the upstream saw %d tools/call, the hook was called %d times (%d retried)", status, n, calls.Load(), retried.Load())
		}
		if status == http.StatusForbidden && code != http.StatusForbidden {
			t.Errorf("403 after the retry: the client got %d %s, want the 403", code, body)
		}
		if status == http.StatusUnauthorized && (code != http.StatusServiceUnavailable || !strings.Contains(body, "refused the credentials")) {
			t.Errorf("401 after the retry: the client got %d %s, want 503", code, body)
		}
	}
}
