package proxymgr

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/proxymgr/audit"
)

func readAudit(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// TestAuditLog runs a real session through a proxy with an audit log and
// checks the events, and that no credential reaches the file.
func TestAuditLog(t *testing.T) {
	t.Parallel()
	const secret = "sekrit-Bearer-Token-9f8e7d"
	for _, mode := range []audit.ParamsMode{audit.ParamsRedacted, audit.ParamsFull, audit.ParamsNone} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, false)
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			p := startProxy(t, Config{
				Upstream: up.url(), Policy: testPolicy, LocalToken: "local-token-abcdef",
				Audit: AuditConfig{File: path, Params: mode},
				Credentials: func(context.Context) (http.Header, error) {
					return http.Header{"Authorization": {"Bearer " + secret}}, nil
				},
			})
			hc := &http.Client{Transport: headerRT{"Authorization", "Bearer local-token-abcdef"}}
			c := mcp.NewClient(&mcp.Implementation{Name: "audit-client", Version: "2.3"}, nil)
			cs, err := c.Connect(ctxT(t), &mcp.StreamableClientTransport{Endpoint: p.URL(), HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
			if err != nil {
				t.Fatal(err)
			}
			ctx := ctxT(t)
			if _, err := cs.ListTools(ctx, nil); err != nil {
				t.Fatal(err)
			}
			// The client pastes the credential and a password into arguments.
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "use " + secret}}); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "delete_repo", Arguments: map[string]any{"text": "x"}}); err == nil {
				t.Fatal("denied call succeeded")
			}
			cs.Close()
			shutdown(t, p)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), secret) || strings.Contains(string(b), "local-token-abcdef") {
				t.Fatalf("a credential reached the audit log:\n%s", b)
			}
			var types []string
			byType := map[string]map[string]any{}
			for _, e := range readAudit(t, path) {
				typ := e["event"].(string)
				types = append(types, typ)
				if e["server"] != "testsrv" || e["time"] == nil || e["outcome"] == nil {
					t.Errorf("event lacks server/time/outcome: %v", e)
				}
				if typ == "request" && e["method"] == "tools/call" {
					byType["call"] = e
				} else {
					byType[typ] = e
				}
			}
			for _, want := range []string{"session.start", "notification", "call", "denial", "session.end"} {
				if byType[want] == nil {
					t.Errorf("no %s event in %v", want, types)
				}
			}
			if s := byType["session.start"]; s != nil && (s["client_name"] != "audit-client" || s["client_version"] != "2.3" || s["protocol_version"] != "2025-11-25" || s["session"] == "") {
				t.Errorf("session.start = %v", s)
			}
			if c := byType["call"]; c != nil {
				if c["tool"] != "echo" || c["outcome"] != "ok" || c["params_size"].(float64) == 0 || c["client_name"] != "audit-client" {
					t.Errorf("tools/call event = %v", c)
				}
				_, hasParams := c["params"]
				if hasParams != (mode != audit.ParamsNone) {
					t.Errorf("params logged = %v in mode %s", hasParams, mode)
				}
			}
			if d := byType["denial"]; d != nil && (d["tool"] != "delete_repo" || d["outcome"] != "denied") {
				t.Errorf("denial = %v", d)
			}
			for _, typ := range types {
				if typ == "request" {
					for _, e := range readAudit(t, path) {
						if e["method"] == "tools/list" {
							t.Errorf("a successful tools/list was logged without LogList: %v", e)
						}
					}
					break
				}
			}
		})
	}
}

func shutdown(t *testing.T, p *Proxy) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
