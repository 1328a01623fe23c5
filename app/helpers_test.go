package app

import (
	"path/filepath"
	"testing"

	"keyport/app/internal/apptest"
)

// testEnv is a fresh home and config dir with a keychain.
type testEnv struct {
	home, dir string
	opts      Options
}

func newTestEnv(t *testing.T) testEnv {
	t.Helper()
	home := t.TempDir()
	dir := filepath.Join(home, ".config", "keyport")
	kc, service := apptest.Keychain(t)
	env := map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, ".config")}
	return testEnv{home: home, dir: dir, opts: Options{
		ConfigDir: dir, Home: home, Keychain: kc, KeychainService: service,
		Executable: "/opt/keyport/bin/keyport",
		Env:        func(k string) string { return env[k] },
	}}
}

func newTestApp(t *testing.T, te testEnv) *App {
	t.Helper()
	a, err := New(te.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return a
}
