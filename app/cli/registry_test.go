package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"keyport/app/internal/apptest"
)

// fakeRegistry serves the realistic fixtures of testdata/registry as an
// MCP Registry v0.1 API on loopback.
func fakeRegistry(t *testing.T) string {
	t.Helper()
	page, err := os.ReadFile(filepath.Join("..", "..", "testdata", "registry", "page1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Servers []json.RawMessage `json:"servers"`
	}
	if err := json.Unmarshal(page, &list); err != nil {
		t.Fatal(err)
	}
	byName := map[string]json.RawMessage{}
	for _, s := range list.Servers {
		var e struct {
			Server struct{ Name string } `json:"server"`
		}
		json.Unmarshal(s, &e)
		byName[e.Server.Name] = s
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v0.1/servers" {
			w.Write(page)
			return
		}
		name, ok := strings.CutPrefix(r.URL.EscapedPath(), "/v0.1/servers/")
		name, ok2 := strings.CutSuffix(name, "/versions/latest")
		name = strings.ReplaceAll(name, "%2F", "/")
		if e, found := byName[name]; ok && ok2 && found {
			w.Write(e)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error": "Server not found"}`))
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestRegistrySearchAndImport(t *testing.T) {
	c := newCLIEnv(t)
	reg := fakeRegistry(t)
	os.MkdirAll(c.dir, 0o700)
	yaml := "registries:\n  - name: official\n    disabled: true\n  - name: local\n    url: " + reg + "\nservers: []\n"
	if err := os.WriteFile(filepath.Join(c.dir, "servers.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := c.run(t, "", "registry", "search", "acme")
	if code != 0 || !strings.Contains(out, "com.example/acme-analytics") || !strings.Contains(out, "(secret)") {
		t.Fatalf("registry search: exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out, "io.github.user/weather ") {
		t.Errorf("search lists a server with no remote:\n%s", out)
	}

	const key = "acme-api-key-5566778899"
	code, out, errOut = c.run(t, key+"\n", "registry", "import", "com.example/acme-analytics", "--name", "acme")
	if code != 0 || !strings.Contains(out, "Imported com.example/acme-analytics as acme") {
		t.Fatalf("registry import: exit %d\n%s\n%s", code, out, errOut)
	}
	servers := mustRead(t, filepath.Join(c.dir, "servers.yaml"))
	for _, want := range []string{"name: acme", "https://analytics.example.com/mcp", "X-Api-Key", "com.example/acme-analytics"} {
		if !strings.Contains(servers, want) {
			t.Errorf("servers.yaml lacks %q:\n%s", want, servers)
		}
	}
	if code, out, _ := c.run(t, "", "ls", "--format", "json"); code != 0 || !strings.Contains(out, `"credential_set": true`) || !strings.Contains(out, `"type": "headers"`) {
		t.Errorf("ls after import:\n%s", out)
	}
	apptest.ScanForSecret(t, key, c.home)

	// Importing it again under the same name is refused, nothing written.
	code, _, errOut = c.run(t, key+"\n", "registry", "import", "com.example/acme-analytics", "--name", "acme")
	if code == 0 || !strings.Contains(errOut, "already exists") {
		t.Errorf("second import: exit %d, %s", code, errOut)
	}
	if code, _, errOut := c.run(t, "", "registry", "import", "com.example/nope"); code == 0 || !strings.Contains(errOut, "com.example/nope") {
		t.Errorf("unknown server: exit %d, %s", code, errOut)
	}
}

func TestSecretAndRm(t *testing.T) {
	c := newCLIEnv(t)
	if code, _, errOut := c.run(t, "first-token-aaaa\n", "add", "acme", "https://acme.example.com/mcp", "--bearer"); code != 0 {
		t.Fatal(errOut)
	}
	if code, out, errOut := c.run(t, "second-token-bbbb\n", "secret", "set", "acme"); code != 0 || !strings.Contains(out, "Stored acme's bearer") {
		t.Fatalf("secret set: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := c.run(t, "x\n", "secret", "set", "acme", "header/X-Nope"); code == 0 || !strings.Contains(errOut, "has no secret") {
		t.Errorf("secret set of an unknown kind: %d %s", code, errOut)
	}
	if code, _, _ := c.run(t, "", "secret", "rm", "acme"); code != 0 {
		t.Fatal("secret rm failed")
	}
	if _, out, _ := c.run(t, "", "ls", "--format", "json"); !strings.Contains(out, `"credential_set": false`) {
		t.Errorf("after secret rm:\n%s", out)
	}
	if code, _, errOut := c.run(t, "", "rm", "acme"); code != ExitUsage || !strings.Contains(errOut, "--yes") {
		t.Errorf("rm without --yes and no terminal: %d %s", code, errOut)
	}
	if code, out, errOut := c.run(t, "", "rm", "acme", "--yes"); code != 0 || !strings.Contains(out, "Removed acme") {
		t.Fatalf("rm: %d %s %s", code, out, errOut)
	}
	if strings.Contains(mustRead(t, filepath.Join(c.dir, "servers.yaml")), "name: acme") {
		t.Error("rm left acme in servers.yaml")
	}
	apptest.ScanForSecret(t, "first-token-aaaa", c.home)
	apptest.ScanForSecret(t, "second-token-bbbb", c.home)
}
