package oauth

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"github.com/zalando/go-keyring"

	"keyport/app/oauth/oauthtest"
)

// fileStore is a TokenStore in one JSON file, shared by processes (its own
// flock guards each read-modify-write). It stands in for the keychain where
// the real one is unavailable.
type fileStore struct{ path string }

func (f fileStore) locked(fn func(map[string]string) (bool, error)) error {
	l := flock.New(f.path + ".lock")
	if err := l.Lock(); err != nil {
		return err
	}
	defer l.Unlock()
	m := map[string]string{}
	if raw, err := os.ReadFile(f.path); err == nil {
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
	}
	write, err := fn(m)
	if err != nil || !write {
		return err
	}
	raw, _ := json.Marshal(m)
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, f.path)
}

func (f fileStore) Get(server, kind string) (string, error) {
	var v string
	err := f.locked(func(m map[string]string) (bool, error) {
		var ok bool
		if v, ok = m[server+"/"+kind]; !ok {
			return false, ErrNotFound
		}
		return false, nil
	})
	return v, err
}

func (f fileStore) Set(server, kind, value string) error {
	return f.locked(func(m map[string]string) (bool, error) { m[server+"/"+kind] = value; return true, nil })
}

func (f fileStore) Delete(server, kind string) error {
	return f.locked(func(m map[string]string) (bool, error) { delete(m, server+"/"+kind); return true, nil })
}

// keyringStore is the real OS keychain through go-keyring, under a test
// service name so it never touches a user's items.
type keyringStore struct{ service string }

func (k keyringStore) Get(server, kind string) (string, error) {
	v, err := keyring.Get(k.service, server+"/"+kind)
	if errors.Is(err, keyring.ErrNotFound) {
		return "", ErrNotFound
	}
	return v, err
}

func (k keyringStore) Set(server, kind, value string) error {
	return keyring.Set(k.service, server+"/"+kind, value)
}

func (k keyringStore) Delete(server, kind string) error {
	err := keyring.Delete(k.service, server+"/"+kind)
	if errors.Is(err, keyring.ErrNotFound) {
		return nil
	}
	return err
}

// requireRealKeychain skips unless the test runs under scripts/session.sh,
// and fails in CI where it always should.
func requireRealKeychain(t *testing.T) {
	t.Helper()
	if os.Getenv("KEYPORT_TEST_KEYRING") == "1" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI must run keychain tests under scripts/session.sh (make test)")
	}
	t.Skip("real keychain tests run under scripts/session.sh; use make test")
}

// helperEnv names the environment of a refresh helper process.
const helperEnv = "KEYPORT_OAUTH_REFRESH_HELPER"

// TestRefreshHelperProcess is not a test: it is the body of the processes
// TestCrossProcessRefresh starts. Each waits for a start signal, then asks
// for the token from several goroutines at once and prints what it got.
func TestRefreshHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process for TestCrossProcessRefresh")
	}
	var store TokenStore = fileStore{os.Getenv("KP_STORE")}
	if s := os.Getenv("KP_KEYRING"); s != "" {
		store = keyringStore{s}
	}
	creds, err := NewCredentials(CredentialsConfig{
		Server:      "demo",
		ResourceURL: os.Getenv("KP_URL"),
		Store:       store,
		LockDir:     os.Getenv("KP_LOCKDIR"),
		Logger:      quietLogger(t),
		Now:         func() time.Time { return time.Now().Add(2 * time.Hour) },
	})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(os.Getenv("KP_GO")); err == nil {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range 8 {
		wg.Go(func() {
			h, err := creds.Header(context.Background())
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fmt.Printf("ERR %v\n", err)
				return
			}
			fmt.Printf("AUTH %s\n", h.Get("Authorization"))
		})
	}
	wg.Wait()
}

// crossProcessRefresh runs two processes refreshing an expired token at
// once against e's authorization server and checks exactly one refresh.
func crossProcessRefresh(t *testing.T, e *env, storeEnv string) {
	t.Helper()
	goFile := filepath.Join(t.TempDir(), "go")
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRefreshHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"=1", storeEnv, "KP_URL="+e.mcp.Endpoint,
			"KP_LOCKDIR="+e.lockDir, "KP_GO="+goFile)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	time.Sleep(200 * time.Millisecond) // both processes are up and polling
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var auths []string
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v\n%s", i, err, outs[i])
		}
		sc := bufio.NewScanner(strings.NewReader(outs[i].String()))
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "ERR ") {
				t.Errorf("helper %d: %s", i, line)
			}
			if a, ok := strings.CutPrefix(line, "AUTH "); ok {
				auths = append(auths, a)
			}
		}
	}
	if len(auths) != 16 {
		t.Fatalf("got %d tokens from the helpers, want 16:\n%s\n%s", len(auths), outs[0], outs[1])
	}
	if distinct := slices.Compact(slices.Sorted(slices.Values(auths))); len(distinct) != 1 {
		t.Errorf("the processes use %d different tokens, want 1", len(distinct))
	}
	if n := e.as.Refreshes.Load(); n != 1 {
		t.Errorf("refreshes = %d, want exactly 1 across both processes", n)
	}
	if errs := e.as.Errors(); len(errs) > 0 {
		t.Errorf("authorization server saw violations (a reused refresh token?): %q", errs)
	}
}

func TestCrossProcessRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oauthtest.Options{RefreshDelay: 100 * time.Millisecond}, oauthtest.MCPOptions{})
	storePath := filepath.Join(t.TempDir(), "store.json")
	e.store = fileStore{storePath}
	if _, err := Login(context.Background(), e.loginConfig(t)); err != nil {
		t.Fatal(err)
	}
	crossProcessRefresh(t, e, "KP_STORE="+storePath)
}
