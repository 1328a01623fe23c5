package telemetry

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"keyport/app/catalog"
	"keyport/proxymgr/audit"
)

// syncBuffer is a log destination the exporter's goroutines share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestExportErrorsHoldNoHeaderValue: the collector (or the gateway in
// front of it) refuses the export and quotes the request's headers in its
// answer, as auth gateways and debug pages do. The OTLP exporters put the
// answer's body in their error; Keyport shows that error in `keyport
// telemetry status`, the status file and its log. The API key of the
// export (a secret header from the keychain, or OTEL_EXPORTER_OTLP_HEADERS)
// must appear in none of them.
func TestExportErrorsHoldNoHeaderValue(t *testing.T) {
	const keychainKey = "otlp-api-key-from-the-keychain-1234"
	const envKey = "otlp-token-from-the-environment-5678"
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		var b strings.Builder
		for k, v := range r.Header {
			b.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
		w.Write([]byte("invalid credentials; the request carried:\n" + b.String()))
	}))
	t.Cleanup(collector.Close)

	cfg := testConfig(t, collector.URL, catalog.ProtocolHTTP)
	cfg.Settings.SecretHeaders = []string{"X-Api-Key"}
	cfg.SecretHeaders = map[string]string{"X-Api-Key": keychainKey}
	cfg.Env = func(k string) string {
		if k == "OTEL_EXPORTER_OTLP_HEADERS" {
			return "Authorization=Bearer%20" + envKey
		}
		return ""
	}
	var logs syncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := audit.Open(audit.Config{File: filepath.Join(cfg.AuditDir, "gh.jsonl")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Log(audit.Event{Type: audit.TypeRequest, Server: "gh", Method: "tools/call", Tool: "search", Outcome: audit.OutcomeOK})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	e := startExporter(t, cfg)
	var st Status
	waitFor(t, "the three exports to fail", func() bool {
		st = e.Status()
		failed := 0
		for _, s := range st.Signals {
			if s.LastError != "" {
				failed++
			}
		}
		return failed == 3 && strings.Contains(logs.String(), "OpenTelemetry SDK reports")
	})
	shown, _ := json.Marshal(st)
	file, _ := os.ReadFile(filepath.Join(cfg.StateDir, "status.json"))
	read, _ := ReadStatus(cfg)
	cli, _ := json.Marshal(read)
	for where, text := range map[string]string{"Status": string(shown), "status.json": string(file), "ReadStatus": string(cli), "the log": logs.String()} {
		for _, secret := range []string{keychainKey, envKey} {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds the export's header value %q:\n%s", where, secret, text)
			}
		}
	}
	if !strings.Contains(string(shown), "401") {
		t.Errorf("the status no longer says what happened: %s", shown)
	}
}
