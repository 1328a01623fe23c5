package telemetry

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Backend sends decoded audit events to the collector. The pipeline owns
// the cursors and the retries; a Backend only converts and sends.
//
// The OTLP backend (package keyport/app/telemetry/otlp, the OpenTelemetry
// SDK and its gRPC and HTTP exporters) is linked in by the binaries' main
// packages (the app's and keyport-cli), which import it for its
// registration; package telemetry itself does not depend on the SDK.
type Backend interface {
	// Export hands recs to signal's exporter (SignalLogs, SignalTraces or
	// SignalMetrics) and returns nil only when they are delivered: logs
	// and spans once the collector accepted them, metrics once counted
	// (the backend exports its cumulative metrics periodically itself).
	// Export is called for different signals at once, never twice for one
	// signal at once. recs (and their Raw bytes) are valid only during the
	// call.
	Export(ctx context.Context, signal string, recs []Record) error
	// MetricsStatus is how the last periodic metrics export went (tried:
	// one was attempted).
	MetricsStatus() (tried bool, err error)
	// Shutdown flushes the metrics and closes the exporters.
	Shutdown(ctx context.Context) error
}

// Setup is what a Backend is built from.
type Setup struct {
	Resolved
	Version  string            // service.version
	Host     string            // host.name
	User     string            // user.name
	Resource map[string]string // extra resource attributes (telemetry.resource)
	Env      func(string) string
	// Timeout bounds one export; MetricInterval is the metrics' period.
	Timeout, MetricInterval time.Duration
	// ProxyUp feeds the keyport.proxy.up gauge (nil: no gauge).
	ProxyUp func() map[string]bool
	// SDKError receives the failures the SDK reports to its process-wide
	// error handler (a periodic metrics export); it logs them without the
	// export's header values (redact.go).
	SDKError func(error)
}

// NewBackend builds a Backend.
type NewBackend func(ctx context.Context, s Setup) (Backend, error)

var (
	registeredMu sync.Mutex
	registered   NewBackend
)

// Register makes f the Backend of exporters whose Config names none. The
// OTLP package registers itself when a binary imports it.
func Register(f NewBackend) {
	registeredMu.Lock()
	registered = f
	registeredMu.Unlock()
}

// Linked reports whether this binary has a Backend to export with.
func Linked() bool {
	registeredMu.Lock()
	defer registeredMu.Unlock()
	return registered != nil
}

// ErrNotLinked: the export is configured, but this program was built
// without an exporter (it does not import package otlp; Keyport's own
// binaries always do).
var ErrNotLinked = errors.New("this program was built without the OpenTelemetry exporter (package keyport/app/telemetry/otlp): audit events wait in the audit log until a Keyport process that exports runs")

func (c *Config) backend() NewBackend {
	if c.Backend != nil {
		return c.Backend
	}
	registeredMu.Lock()
	defer registeredMu.Unlock()
	return registered
}
