package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"keyport/proxymgr/pins"
)

// fixturePins is the part of testdata/screenshot/pins/local-tools.json the
// story depends on.
type fixturePins struct {
	Tools map[string]struct{ Hash pins.Hash } `json:"tools"`
	Held  map[string]struct{ Hash pins.Hash } `json:"held"`
}

// TestListsWhatTheFixturePinned lists the server's tools with a go-sdk
// client and checks them against the fixture's pins: the review screenshot
// shows a held tool only while the server lists exactly what was held, and
// the approved tools only pass while their definitions are unchanged.
func TestListsWhatTheFixturePinned(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "screenshot", "pins", "local-tools.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fx fixturePins
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(handler())
	defer srv.Close()
	ctx := context.Background()
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	sess, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL + Path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	listed := map[string]pins.Hash{}
	for tool, err := range sess.Tools(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		def, err := json.Marshal(tool)
		if err != nil {
			t.Fatal(err)
		}
		obs, err := pins.Observe(def)
		if err != nil {
			t.Fatalf("%s: %v", tool.Name, err)
		}
		listed[obs.Name] = obs.Hash
	}

	for name, held := range fx.Held {
		if listed[name] != held.Hash {
			t.Errorf("held %s: the server lists %q, the fixture held %q", name, listed[name], held.Hash)
		}
	}
	for name, approved := range fx.Tools {
		if _, isHeld := fx.Held[name]; isHeld {
			if listed[name] == approved.Hash {
				t.Errorf("%s is held but the server lists its approved definition", name)
			}
			continue
		}
		if listed[name] != approved.Hash {
			t.Errorf("approved %s: the server lists %q, the fixture approved %q (it would be held)", name, listed[name], approved.Hash)
		}
	}
	for name := range listed {
		_, ok1 := fx.Tools[name]
		_, ok2 := fx.Held[name]
		if !ok1 && !ok2 && !strings.HasPrefix(name, "delete_") {
			t.Errorf("the server lists %s, which the fixture neither approved nor held (nor does the policy hide it)", name)
		}
	}
}

// TestToolsWork calls each tool that does something: the profile and the
// audit views describe a server whose tools answer.
func TestToolsWork(t *testing.T) {
	srv := httptest.NewServer(handler())
	defer srv.Close()
	ctx := context.Background()
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	sess, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL + Path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for _, tc := range []struct {
		tool string
		args map[string]any
		want string
		err  bool
	}{
		{"list_dir", map[string]any{"path": "."}, "docs/\ngo.mod\nhello.go", false},
		{"read_file", map[string]any{"path": "go.mod"}, "module example.com/hello-service", false},
		{"read_file", map[string]any{"path": "../../etc/passwd"}, "file not found", true},
		{"search_files", map[string]any{"query": "Hello, "}, "hello.go:", false},
		{"run_tests", map[string]any{}, "go test ./...", false},
		{"upload_file", map[string]any{"path": "go.mod"}, "nothing was uploaded", true},
	} {
		res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args})
		if err != nil {
			t.Fatalf("%s: %v", tc.tool, err)
		}
		text := res.Content[0].(*mcp.TextContent).Text
		if res.IsError != tc.err || !strings.Contains(text, tc.want) {
			t.Errorf("%s(%v) = %q (error %t), want %q (error %t)", tc.tool, tc.args, text, res.IsError, tc.want, tc.err)
		}
	}
}

// TestAcceptsOTLP: the managed fixture's collector answers an export with
// 200, and refuses what is not an export.
func TestAcceptsOTLP(t *testing.T) {
	srv := httptest.NewServer(handler())
	defer srv.Close()
	res, err := http.Post(srv.URL+"/v1/logs", "application/x-protobuf", strings.NewReader("\x0a\x00"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("POST /v1/logs: %s", res.Status)
	}
	res, err = http.Get(srv.URL + "/v1/logs")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/logs: %s, want 405", res.Status)
	}
}

// TestLoopbackOnly: the fixture serves this machine only.
func TestLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:18937", ":18937", "192.0.2.1:18937", "localhost:18937"} {
		if err := run(addr); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("run(%q) = %v, want a refusal naming loopback", addr, err)
		}
	}
}
