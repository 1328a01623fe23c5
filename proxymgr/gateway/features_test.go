package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// featureServer is a go-sdk server using every feature a profile forwards.
func featureServer(t *testing.T, name string, cancelled chan<- string) *server {
	opts := &mcp.ServerOptions{
		PageSize:           2, // the gateway follows the member's pages
		SubscribeHandler:   func(context.Context, *mcp.SubscribeRequest) error { return nil },
		UnsubscribeHandler: func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
		CompletionHandler: func(_ context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
			return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{
				Values: []string{req.Params.Ref.Type + ":" + req.Params.Ref.Name + req.Params.Ref.URI + ":" + req.Params.Argument.Value + "-done"}}}, nil
		},
	}
	return newServer(t, name, opts, func(s *server, m *mcp.Server) {
		addEcho(s, m, "a", "b", "c")
		mcp.AddTool(m, &mcp.Tool{Name: "progress"}, func(ctx context.Context, req *mcp.CallToolRequest, _ textIn) (*mcp.CallToolResult, any, error) {
			for i := 1; i <= 3; i++ {
				_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: req.Params.GetProgressToken(), Progress: float64(i), Total: 3, Message: fmt.Sprint("step ", i)})
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "progressed"}}}, nil, nil
		})
		mcp.AddTool(m, &mcp.Tool{Name: "log"}, func(ctx context.Context, req *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
			_ = req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "warning", Logger: name, Data: "logged " + in.Text})
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "logged"}}}, nil, nil
		})
		mcp.AddTool(m, &mcp.Tool{Name: "sample"}, func(ctx context.Context, req *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{MaxTokens: 10, Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: in.Text}}}})
			if err != nil {
				return nil, nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " sampled " + res.Content.(*mcp.TextContent).Text}}}, nil, nil
		})
		mcp.AddTool(m, &mcp.Tool{Name: "ask"}, func(ctx context.Context, req *mcp.CallToolRequest, _ textIn) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "your name?", RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}}})
			if err != nil {
				return nil, nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprint(name, " was told ", res.Action, " ", res.Content["name"])}}}, nil, nil
		})
		mcp.AddTool(m, &mcp.Tool{Name: "roots"}, func(ctx context.Context, req *mcp.CallToolRequest, _ textIn) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.ListRoots(ctx, nil)
			if err != nil {
				return nil, nil, err
			}
			var uris []string
			for _, r := range res.Roots {
				uris = append(uris, r.URI)
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Join(uris, ",")}}}, nil, nil
		})
		mcp.AddTool(m, &mcp.Tool{Name: "hang"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ textIn) (*mcp.CallToolResult, any, error) {
			select {
			case <-ctx.Done():
				cancelled <- name
				return nil, nil, ctx.Err()
			case <-time.After(30 * time.Second):
				return nil, nil, errors.New("never cancelled")
			}
		})
		mcp.AddTool(m, &mcp.Tool{Name: "grow"}, func(ctx context.Context, _ *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
			addEcho(s, m, in.Text)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "grown"}}}, nil, nil
		})
		mcp.AddTool(m, &mcp.Tool{Name: "touch"}, func(ctx context.Context, _ *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
			_ = m.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: in.Text})
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "touched"}}}, nil, nil
		})
		m.AddResource(&mcp.Resource{Name: "readme", URI: "file:///" + name + "/readme.txt", MIMEType: "text/plain"}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: name + " readme"}}}, nil
		})
		m.AddResourceTemplate(&mcp.ResourceTemplate{Name: "doc", URITemplate: "file:///" + name + "/docs/{page}"}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: name + " doc " + req.Params.URI}}}, nil
		})
		m.AddPrompt(&mcp.Prompt{Name: "greet", Arguments: []*mcp.PromptArgument{{Name: "who"}}}, func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: name + " greets " + req.Params.Arguments["who"]}}}}, nil
		})
	})
}

// clientLog collects what a client received from the profile.
type clientLog struct {
	mu       sync.Mutex
	progress []string
	logs     []string
	changed  int
	updated  []string
}

func (l *clientLog) add(f func(*clientLog)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(l)
}

func (l *clientLog) get() clientLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	return clientLog{progress: slices.Clone(l.progress), logs: slices.Clone(l.logs), changed: l.changed, updated: slices.Clone(l.updated)}
}

// TestEverythingForwarded: a profile of two servers using every feature
// MCP has, driven by a go-sdk client: tools, progress, logging, sampling,
// elicitation and roots round trips (answered by the real client and
// returned to the member that asked), cancellation, resources (list, read,
// templates, subscribe and updates), prompts, completion, a member's
// paginated lists and its list_changed.
func TestEverythingForwarded(t *testing.T) {
	t.Parallel()
	cancelled := make(chan string, 2)
	one := featureServer(t, "one", cancelled)
	two := featureServer(t, "two", cancelled)
	g := startGateway(t, Config{Members: []Member{one.member(), two.member()}})

	var got clientLog
	cs := featureClient(t, g, &got)
	ctx := context.Background()

	// Paginated members, collisions prefixed, unique names kept.
	want := []string{"one_a", "one_ask", "one_b", "one_c", "one_grow", "one_hang", "one_log", "one_progress", "one_roots", "one_sample", "one_touch",
		"two_a", "two_ask", "two_b", "two_c", "two_grow", "two_hang", "two_log", "two_progress", "two_roots", "two_sample", "two_touch"}
	if names := toolNames(t, cs); !slices.Equal(names, want) {
		t.Fatalf("tools = %v", names)
	}

	// Tool calls: every one passes through as bytes (passthrough.go).
	checkCallFeatures(t, g, cs, &got, cancelled, true)

	// Resources: listed from both, read and subscribed by URI.
	rl, err := cs.ListResources(ctx, nil)
	if err != nil || len(rl.Resources) != 2 {
		t.Fatalf("resources: %v %v", rl, err)
	}
	tl, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil || len(tl.ResourceTemplates) != 2 || tl.ResourceTemplates[0].Name != "one_doc" {
		t.Fatalf("templates: %+v %v", tl, err)
	}
	for uri, want := range map[string]string{
		"file:///two/readme.txt": "two readme", "file:///one/docs/intro": "one doc file:///one/docs/intro",
	} {
		rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		if err != nil || rr.Contents[0].Text != want {
			t.Errorf("read %s: %v %v", uri, rr, err)
		}
	}
	if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///nobody/x"}); err == nil {
		t.Error("reading a resource nobody has succeeded")
	}
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "file:///two/readme.txt"}); err != nil {
		t.Fatal(err)
	}
	if _, err := callText(t, cs, "two_touch", "file:///two/readme.txt"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "resources/updated", func() bool { return slices.Contains(got.get().updated, "file:///two/readme.txt") })

	// Prompts and completion, routed by the prompt's name.
	pl, err := cs.ListPrompts(ctx, nil)
	if err != nil || len(pl.Prompts) != 2 || pl.Prompts[1].Name != "two_greet" {
		t.Fatalf("prompts: %v %v", pl, err)
	}
	gp, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "two_greet", Arguments: map[string]string{"who": "Ada"}})
	if err != nil || gp.Messages[0].Content.(*mcp.TextContent).Text != "two greets Ada" {
		t.Fatalf("prompt: %v %v", gp, err)
	}
	cr, err := cs.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "one_greet"}, Argument: mcp.CompleteParamsArgument{Name: "who", Value: "A"}})
	if err != nil || cr.Completion.Values[0] != "ref/prompt:greet:A-done" {
		t.Fatalf("completion: %v %v", cr, err)
	}

	// A member's list_changed reaches the client, which sees the new tool.
	before := got.get().changed
	if _, err := callText(t, cs, "one_grow", "fresh"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "tools/list_changed", func() bool { return got.get().changed > before })
	if !slices.Contains(toolNames(t, cs), "fresh") {
		t.Errorf("the new tool is not listed: %v", toolNames(t, cs))
	}
}
