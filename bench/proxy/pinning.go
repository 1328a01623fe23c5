package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/app/pinstore"
	"keyport/proxymgr"
)

// The tool pinning figure: Keyport's proxy with pinning on (the app's
// default, hold) against the same proxy with pinning off, in the same run,
// on an upstream with many tools: the tools/list round trip of a go-sdk
// client (the whole list, every definition checked against its pin) and
// the tools/call round trip (pinning only looks the tool up).

// startToolsUpstream serves a go-sdk server with n tools (a description of
// some 200 characters and a three-property input schema each, like real
// servers' tools) and echo.
func startToolsUpstream(n int) string {
	s := mcp.NewServer(&mcp.Implementation{Name: "bench-many-tools", Version: "1.0.0"}, nil)
	for i := range n {
		desc := fmt.Sprintf("Tool number %d of the benchmark server: it looks things up in the %d-th collection and returns at most limit results, sorted by relevance, with their ids, titles and a short excerpt.", i, i)
		schema := map[string]any{"type": "object", "properties": map[string]any{
			"query": map[string]any{"type": "string", "description": "what to look for"},
			"limit": map[string]any{"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
			"sort":  map[string]any{"type": "string", "enum": []any{"relevance", "date", "title"}},
		}, "required": []any{"query"}}
		s.AddTool(&mcp.Tool{Name: fmt.Sprintf("lookup_%03d", i), Description: desc, InputSchema: schema},
			func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return &mcp.CallToolResult{}, nil
			})
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echoes its text"}, func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	return "http://" + ln.Addr().String() + "/mcp"
}

// pinnedConfig is keyportConfig with tool pinning (hold) on, its pins in
// dir (a config dir of its own).
func pinnedConfig(name, upstreamURL, auditFile, dir string) proxymgr.Config {
	cfg := keyportConfig(name, upstreamURL, auditFile)
	cfg.Pins = pinstore.Open(dir, cfg.Logger).Server(name)
	cfg.Pinning = proxymgr.PinHold
	return cfg
}

type pinResult struct {
	tools      int
	listBytes  int
	list, call [2][]time.Duration // [off, on] p50 per round
}

var pinPaths = []string{"pinning off", "pinning on"}

// benchPinning measures tools/list and tools/call through the two proxies,
// alternating them round by round.
func benchPinning(self, dir string, tools, rounds int, d time.Duration) pinResult {
	up := startToolsUpstream(tools)
	off := spawn(self, "keyport", up, filepath.Join(dir, "audit-pins-off.jsonl"))
	on := spawn(self, "keyport-pins", up, filepath.Join(dir, "audit-pins-on.jsonl")+"|"+filepath.Join(dir, "pins-config"))
	defer off.stop()
	defer on.stop()
	ctx := context.Background()
	res := pinResult{tools: tools + 1}
	var sessions [2]*mcp.ClientSession
	for i, u := range []string{off.url, on.url} {
		c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
		cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: u, HTTPClient: httpClient}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
		if err != nil {
			log.Fatalf("connect %s: %v", pinPaths[i], err)
		}
		defer cs.Close()
		sessions[i] = cs
		// The first list through the pinning proxy is trusted and pinned;
		// from then on every list is checked.
		r, err := cs.ListTools(ctx, nil)
		if err != nil || len(r.Tools) != res.tools {
			log.Fatalf("tools/list through %s: %d tools, %v", pinPaths[i], len(r.Tools), err)
		}
		b, _ := json.Marshal(r)
		res.listBytes = len(b)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "pins-config", "pins", "bench.json")); err != nil || !strings.Contains(string(b), "lookup_499") {
		log.Fatalf("the pinning proxy pinned nothing: %v", err)
	}
	list := func(cs *mcp.ClientSession, d time.Duration) []time.Duration {
		var lat []time.Duration
		for deadline := time.Now().Add(d); time.Now().Before(deadline); {
			t0 := time.Now()
			r, err := cs.ListTools(ctx, nil)
			if err != nil || len(r.Tools) != res.tools {
				log.Fatalf("tools/list: %v", err)
			}
			lat = append(lat, time.Since(t0))
		}
		return lat
	}
	for i := range sessions { // warm up
		list(sessions[i], d/4)
		runCalls(sessions[i:i+1], d/4)
	}
	// Lists and calls in separate phases, so neither pays for the other's
	// garbage.
	for r := range rounds {
		for k := range 2 {
			i := (r + k) % 2
			res.list[i] = append(res.list[i], percentile(list(sessions[i], d), 50))
		}
		fmt.Printf("  tool pinning, tools/list: round %d/%d done\n", r+1, rounds)
	}
	for r := range rounds {
		for k := range 2 {
			i := (r + k) % 2
			lat, _ := runCalls(sessions[i:i+1], d)
			res.call[i] = append(res.call[i], percentile(lat, 50))
		}
		fmt.Printf("  tool pinning, tools/call: round %d/%d done\n", r+1, rounds)
	}
	return res
}

func (p pinResult) print(w io.Writer) {
	if len(p.list[0]) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "tool pinning, %d tools (tools/list answer ~%d KiB)\ttools/list p50\ttools/call p50\t\n", p.tools, p.listBytes/1024)
	for i, name := range pinPaths {
		fmt.Fprintf(tw, "  keyport, %s\t%s\t%s\t\n", name, ms(medianD(p.list[i])), ms(medianD(p.call[i])))
	}
	lr := float64(medianD(p.list[1])) / float64(medianD(p.list[0]))
	cr := float64(medianD(p.call[1])) / float64(medianD(p.call[0]))
	fmt.Fprintf(tw, "  on / off\t%.2fx (target <= 1.2x) %s\t%.2fx (unaffected)\t\n", lr, verdict(lr <= 1.2), cr)
	tw.Flush()
	fmt.Fprintln(w)
}
