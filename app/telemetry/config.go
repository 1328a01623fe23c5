// Package telemetry exports Keyport's audit log, metrics and traces to an
// organization's OpenTelemetry collector over OTLP (gRPC or HTTP/protobuf),
// with the official Go SDK's exporters.
//
// The local audit log (JSON lines, proxymgr/audit) stays the source of
// truth: the exporter reads it from a cursor persisted in the config dir,
// per signal, and moves the cursor only after the collector accepted a
// batch. A collector that is down, a cut network or a restart of Keyport
// delays events but never drops them; delivery is at least once, and every
// record carries the audit event's id (keyport.event_id) so a backend can
// drop a duplicate. The proxies' request path does not change at all.
//
// One process per config dir exports (a lock file); the others stand by
// and take over when it exits.
//
// This package holds everything but the OpenTelemetry SDK: the cursors,
// the one loop that reads and decodes each audit line once for all three
// signals, the status. The SDK side is a Backend (package otlp) that the
// binaries' main packages link in and register.
package telemetry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"keyport/app/catalog"
)

// Config configures an Exporter.
type Config struct {
	// Settings are the telemetry settings in effect (servers.yaml's or the
	// organization's); nil: only the OTEL_EXPORTER_OTLP_* environment.
	Settings *catalog.Telemetry
	// Managed reports that Settings are the organization's.
	Managed bool
	// SecretHeaders are the values of Settings.SecretHeaders, from the
	// keychain.
	SecretHeaders map[string]string
	// AuditDir holds the audit logs (NAME.jsonl and their rotations).
	AuditDir string
	// StateDir holds the cursors, the lock and the status file.
	StateDir string
	// Version is Keyport's version (service.version).
	Version string
	// Env looks up environment variables; nil means os.Getenv.
	Env func(string) string
	// Logger receives what the exporter has to say; nil: slog.Default().
	Logger *slog.Logger
	// ProxyUp reports, per server, whether its proxy runs in this process
	// (the keyport.proxy.up gauge); nil: no gauge.
	ProxyUp func() map[string]bool
	// Backend builds the exporter; nil: the one registered by the OTLP
	// package (Register), if this binary links it.
	Backend NewBackend

	// Tuning; zero values take the defaults.
	BatchSize      int           // events per export (default 4096; also at most 4 MiB of lines)
	MinBackoff     time.Duration // first wait after a failed export (1 s)
	MaxBackoff     time.Duration // longest wait (30 s)
	Delay          time.Duration // wait after new events, so batches fill: at most one export per Delay unless a batch is full (1 s)
	MetricInterval time.Duration // metrics export period (15 s)
	Timeout        time.Duration // one export's timeout (10 s)
	LockRetry      time.Duration // standby: how often to try the lock (5 s)
}

// Resolved is where and how the export goes, after the environment filled
// what the settings leave unset.
type Resolved struct {
	Enabled  bool
	Reason   string // why not, when !Enabled
	Endpoint string // the collector's base URL
	Protocol string // grpc or http/protobuf
	Headers  map[string]string
	TLS      *tls.Config // nil: system roots
	Signals  []string
	Backlog  int64 // the backlog limit in bytes
}

func (c *Config) env(k string) string {
	if c.Env != nil {
		return c.Env(k)
	}
	return os.Getenv(k)
}

// Resolve works out the export's endpoint, protocol, headers and TLS.
func (c *Config) Resolve() (Resolved, error) {
	s := c.Settings
	if s == nil {
		s = &catalog.Telemetry{}
	}
	r := Resolved{Protocol: s.Protocol, Endpoint: s.Endpoint, Backlog: 32 << 20}
	if s.BacklogLimitMB > 0 {
		r.Backlog = int64(s.BacklogLimitMB) << 20
	}
	if s.Disabled {
		r.Reason = "telemetry.disabled is set"
		return r, nil
	}
	if r.Endpoint == "" {
		r.Endpoint = c.env("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	if r.Endpoint == "" {
		r.Reason = "no collector configured (telemetry.endpoint in servers.yaml, or OTEL_EXPORTER_OTLP_ENDPOINT)"
		return r, nil
	}
	if r.Protocol == "" {
		r.Protocol = c.env("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch r.Protocol {
	case "", catalog.ProtocolHTTP, "http":
		r.Protocol = catalog.ProtocolHTTP
	case catalog.ProtocolGRPC:
	default:
		return r, fmt.Errorf("OTLP protocol %q: use grpc or http/protobuf", r.Protocol)
	}
	u, err := url.Parse(r.Endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return r, errors.New("the OTLP endpoint is not a URL like https://otel.example.com:4318")
	}
	r.Headers = map[string]string{}
	for _, kv := range strings.Split(c.env("OTEL_EXPORTER_OTLP_HEADERS"), ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			continue
		}
		if dv, err := url.QueryUnescape(strings.TrimSpace(v)); err == nil {
			v = dv
		}
		r.Headers[strings.TrimSpace(k)] = v
	}
	for k, v := range s.Headers {
		r.Headers[k] = v
	}
	for _, h := range s.SecretHeaders {
		v, ok := c.SecretHeaders[h]
		if !ok || v == "" {
			return r, fmt.Errorf("the telemetry header %s has no value in the OS keychain; set it with 'keyport telemetry secret set %s'", h, h)
		}
		r.Headers[h] = v
	}
	ca := s.TLS.CAFile
	if ca == "" {
		ca = c.env("OTEL_EXPORTER_OTLP_CERTIFICATE")
	}
	if ca != "" {
		if strings.HasPrefix(ca, "~/") {
			home, _ := os.UserHomeDir()
			ca = home + ca[1:]
		}
		pem, err := os.ReadFile(ca)
		if err != nil {
			return r, fmt.Errorf("the collector's CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return r, fmt.Errorf("the collector's CA file %s holds no PEM certificate", ca)
		}
		r.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	for _, sig := range []string{catalog.SignalLogs, catalog.SignalMetrics, catalog.SignalTraces} {
		if s.Exports(sig) {
			r.Signals = append(r.Signals, sig)
		}
	}
	r.Enabled = true
	return r, nil
}

func (c *Config) defaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 4096
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.Delay <= 0 {
		c.Delay = time.Second
	}
	if c.MetricInterval <= 0 {
		c.MetricInterval = 15 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.LockRetry <= 0 {
		c.LockRetry = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}
