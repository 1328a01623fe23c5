package gateway

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The 2026 era lets a tool mirror arguments into Mcp-Param-* headers
// (SEP-2243), and a server must refuse, with 400 and -32020, a request
// whose headers disagree with its body. The go-sdk handler checks that
// against the tools its server has, before any middleware runs; so the
// stateless server is given the profile's tools that declare such headers
// (under the names the client sees; their handlers are never called: the
// middleware answers every tools/call), and the check holds at the
// profile's door as at the server's.

// mirrorHeaderTools keeps the stateless server's copy of the tools with
// x-mcp-header annotations equal to tools.
func (g *Gateway) mirrorHeaderTools(tools []*mcp.Tool) {
	want := map[string]*mcp.Tool{}
	sums := map[string]string{}
	for _, t := range tools {
		b, err := json.Marshal(t.InputSchema)
		if err != nil || !strings.Contains(string(b), `"x-mcp-header"`) {
			continue
		}
		want[t.Name] = t
		sums[t.Name] = string(b)
	}
	g.mirrorMu.Lock()
	defer g.mirrorMu.Unlock()
	var stale []string
	for name, sum := range g.mirrored {
		if sums[name] != sum {
			stale = append(stale, name)
		}
	}
	if len(stale) > 0 {
		g.modern.RemoveTools(stale...)
		for _, n := range stale {
			delete(g.mirrored, n)
		}
	}
	for name, t := range want {
		if _, ok := g.mirrored[name]; ok {
			continue
		}
		if g.addMirror(t) {
			if g.mirrored == nil {
				g.mirrored = map[string]string{}
			}
			g.mirrored[name] = sums[name]
		}
	}
}

// addMirror adds t to the stateless server; a tool the go-sdk refuses
// (its annotations are invalid) is left out, as the go-sdk would.
func (g *Gateway) addMirror(t *mcp.Tool) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			g.log.Debug("a tool's Mcp-Param annotations are invalid; its headers are checked by its server only", "tool", t.Name, "err", v)
			ok = false
		}
	}()
	c := *t
	g.modern.AddTool(&c, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, errNoMember
	})
	return true
}
