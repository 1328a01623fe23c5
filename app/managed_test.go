package app

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The core refuses every change that would loosen the organization's
// managed settings, saying why; the GUI and the CLI both call it.
func TestManagedRefusals(t *testing.T) {
	t.Parallel()
	te := newTestEnv(t)
	mp := filepath.Join(te.home, "managed.yaml")
	os.WriteFile(mp, []byte(`
servers:
  - name: corp
    url: https://mcp.corp.example/mcp
rules:
  - deny: [delete_*]
    pinning: warn
allowed_urls: ["https://*.corp.example/*"]
forbid_insecure: true
default_clients: [cursor]
`), 0o644)
	te.opts.ManagedFile = mp
	os.MkdirAll(te.dir, 0o700)
	os.WriteFile(filepath.Join(te.dir, "servers.yaml"), []byte("servers:\n  - name: mine\n    url: https://a.corp.example/mcp\n    tools: {deny: [drop_*]}\n  - name: outside\n    url: https://other.example/mcp\n"), 0o600)
	a := newTestApp(t, te)

	corp, err := a.Server("corp")
	if err != nil || !corp.Managed || !slices.Contains(corp.ManagedDeny, "delete_*") {
		t.Fatalf("corp = %+v, %v", corp, err)
	}
	mine, _ := a.Server("mine")
	if mine.Managed || mine.ManagedPinning != "warn" || !slices.Equal(mine.Deny, []string{"drop_*", "delete_*"}) {
		t.Errorf("mine = %+v", mine)
	}
	if _, err := a.Server("outside"); err == nil {
		t.Error("a server outside the allowed URLs is served")
	}
	if _, _, blocked := a.ManagedStatus(); len(blocked) != 1 || blocked[0].Name != "outside" {
		t.Errorf("blocked = %+v", blocked)
	}
	for what, err := range map[string]error{
		"remove a managed server":       a.RemoveServer("corp"),
		"edit a managed server's tools": a.SetToolPolicy("corp", nil, []string{"delete_*"}),
		"drop a managed deny pattern":   a.SetToolPolicy("mine", nil, []string{"drop_*"}),
		"add under a managed name":      a.AddServer(NewServer{Name: "corp", URL: "https://x.corp.example/mcp"}),
		"add outside the allowed URLs":  a.AddServer(NewServer{Name: "new", URL: "https://evil.example/mcp"}),
	} {
		if err == nil || !strings.Contains(err.Error(), "set by your organization") {
			t.Errorf("%s: %v", what, err)
		}
	}
	// Keeping the managed pattern and changing one's own works, and the
	// managed pattern is never written to servers.yaml.
	if err := a.SetToolPolicy("mine", nil, []string{"delete_*", "rm_*"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(te.dir, "servers.yaml"))
	if strings.Contains(string(raw), "delete_*") || !strings.Contains(string(raw), "rm_*") {
		t.Errorf("servers.yaml:\n%s", raw)
	}
	if cs := a.Clients(""); len(cs) == 0 || cs[0].ID != "cursor" || !cs[0].Default {
		t.Errorf("the organization's default client is not first: %+v", cs[0])
	}
	// A broken managed file: the last good one stays, and the GUI's
	// banner (CatalogError) says so.
	os.WriteFile(mp, []byte("rules: [{deny: [x]\n"), 0o644)
	a.catalogChanged()
	if e := a.CatalogError(); !strings.Contains(e, "last valid version") {
		t.Errorf("CatalogError = %q", e)
	}
	if v, err := a.Server("corp"); err != nil || !v.Managed {
		t.Errorf("corp after a broken managed file: %+v, %v", v, err)
	}
}
