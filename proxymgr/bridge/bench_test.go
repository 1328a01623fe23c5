package bridge_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/proxymgr/bridge"
)

// BenchmarkToolsCall measures one sequential tools/call through the bridge
// (raw lines in, raw lines out) against an in-process go-sdk server, next
// to the same call made directly over HTTP with the go-sdk client. The
// end-to-end comparison with other bridges is bench/bridge.
func BenchmarkToolsCall(b *testing.B) {
	for _, jsonResponse := range []bool{false, true} {
		server := mcp.NewServer(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
		mcp.AddTool(server, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
			return textResult(in.Text), nil, nil
		})
		srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
			&mcp.StreamableHTTPOptions{JSONResponse: jsonResponse, Logger: slog.New(slog.DiscardHandler)}))
		mode := map[bool]string{false: "sse", true: "json"}[jsonResponse]

		b.Run("bridge/"+mode, func(b *testing.B) {
			inR, inW := io.Pipe()
			outR, outW := io.Pipe()
			done := make(chan error, 1)
			go func() { done <- bridge.Run(context.Background(), bridge.Config{URL: srv.URL, In: inR, Out: outW}) }()
			out := bufio.NewReader(outR)
			exchange := func(line string, answers int) {
				if _, err := io.WriteString(inW, line+"\n"); err != nil {
					b.Fatal(err)
				}
				for range answers {
					if _, err := out.ReadSlice('\n'); err != nil {
						b.Fatal(err)
					}
				}
			}
			exchange(fmt.Sprintf(initLine, "0"), 1)
			exchange(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, 0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				exchange(`{"jsonrpc":"2.0","id":`+fmt.Sprint(i+1)+`,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}`, 1)
			}
			b.StopTimer()
			inW.Close()
			<-done
		})

		b.Run("direct/"+mode, func(b *testing.B) {
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).Connect(context.Background(),
				&mcp.StreamableClientTransport{Endpoint: srv.URL}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
			if err != nil {
				b.Fatal(err)
			}
			params := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := cs.CallTool(context.Background(), params); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cs.Close()
		})
		srv.Close()
	}
}
