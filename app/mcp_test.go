package app

import "github.com/modelcontextprotocol/go-sdk/mcp"

var mcpCallWhoami = mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}}

func textOf(r *mcp.CallToolResult) string {
	var s string
	for _, c := range r.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			s += t.Text
		}
	}
	return s
}
