package gateway

import (
	"slices"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestStatusIdleUntilUsed: a running profile that no client has used yet
// reports its members idle (not tried, so not known to be down); once a
// client lists the tools, they are up and no longer idle.
func TestStatusIdleUntilUsed(t *testing.T) {
	t.Parallel()
	a := newServer(t, "alpha", nil, func(s *server, m *mcp.Server) { addEcho(s, m, "one") })
	g := startGateway(t, Config{Members: []Member{a.member()}})
	if st := g.Status(); len(st.Members) != 1 || !st.Members[0].Idle || st.Members[0].Up {
		t.Fatalf("status before any client: %+v; want alpha idle and not up", st.Members)
	}
	cs := connect(t, g, nil)
	if got := toolNames(t, cs); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("tools = %v", got)
	}
	if st := g.Status(); st.Members[0].Idle || !st.Members[0].Up {
		t.Errorf("status after a client listed the tools: %+v; want alpha up, not idle", st.Members)
	}
}
