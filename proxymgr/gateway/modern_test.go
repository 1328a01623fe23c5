package gateway

import (
	"context"
	"slices"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestStatelessClient: a 2026-07-28 client (server/discover, no session,
// per-request _meta) uses the same endpoint: lists and calls reach a
// stateless member and a 2025-era member, and a member's input_required
// result (elicitation, SEP-2322) goes back to the client, whose retry with
// the answer reaches the member that asked.
func TestStatelessClient(t *testing.T) {
	t.Parallel()
	modern := newServer(t, "modern", nil, func(s *server, m *mcp.Server) {
		addEcho(s, m, "echo")
		mcp.AddTool(m, &mcp.Tool{Name: "confirm"}, func(_ context.Context, req *mcp.CallToolRequest, _ textIn) (*mcp.CallToolResult, any, error) {
			if r, ok := req.Params.InputResponses["ok"].(*mcp.ElicitResult); ok {
				s.ran("confirm")
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "confirmed " + r.Action + " state " + req.Params.RequestState}}}, nil, nil
			}
			return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"ok": &mcp.ElicitParams{Message: "Sure?", RequestedSchema: map[string]any{"type": "object"}}}, RequestState: "s1"}, nil, nil
		})
	})
	modern.http.Stateless = true
	modern.restart()
	legacy := newServer(t, "legacy", nil, func(s *server, m *mcp.Server) { addEcho(s, m, "old") })
	g := startGateway(t, Config{Members: []Member{modern.member(), legacy.member()}})

	c := mcp.NewClient(&mcp.Implementation{Name: "modern-client", Version: "1"}, &mcp.ClientOptions{
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{}}, nil
		},
	})
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: g.URL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if v := cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
		t.Fatalf("negotiated %s; want the stateless era", v)
	}
	if got := toolNames(t, cs); !slices.Equal(got, []string{"confirm", "echo", "old"}) {
		t.Fatalf("tools = %v", got)
	}
	for name, want := range map[string]string{"echo": "modern/echo:x", "old": "legacy/old:x", "confirm": "confirmed accept state s1"} {
		if out, err := callText(t, cs, name, "x"); err != nil || out != want {
			t.Errorf("%s: %q %v; want %q", name, out, err, want)
		}
	}
	if ran := modern.ranTools(); !slices.Contains(ran, "confirm") {
		t.Errorf("the member never got the answer: ran %v", ran)
	}
}
