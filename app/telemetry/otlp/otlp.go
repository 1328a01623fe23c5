// Package otlp is the export's OpenTelemetry side: a telemetry.Backend
// built on the official Go SDK (go.opentelemetry.io/otel) and its OTLP
// exporters, over gRPC or HTTP/protobuf. Importing it registers it
// (telemetry.Register): both binaries' main packages do (the app's and
// keyport-cli), so package telemetry, and with it package app, stay free
// of the SDK and gRPC, and a program that does not import this package
// (a test, a tool) links neither.
package otlp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"

	"keyport/app/catalog"
	"keyport/app/telemetry"
	"keyport/proxymgr/audit"
)

func init() { telemetry.Register(New) }

// backend holds the SDK's providers and OTLP exporters. Logs and spans are
// built with the SDK (so they carry the resource and scope) but collected
// synchronously and exported by the pipeline itself, which alone decides
// when a batch is delivered; the SDK's own batching and retries, which
// drop data when the collector stays away, are not used.
type backend struct {
	logs    *sdklog.LoggerProvider
	logger  otellog.Logger
	logExp  sdklog.Exporter
	logBuf  *collect[sdklog.Record]
	tracer  *sdktrace.TracerProvider
	spanExp *otlptrace.Exporter
	spanBuf *collect[sdktrace.ReadOnlySpan]
	meter   *sdkmetric.MeterProvider
	metExp  *statusMetricExporter
	inst    instruments

	// scratch, reused from batch to batch (one export per signal at a time)
	logKV, spanKV []attribute.KeyValue
	metricAttrs   map[metricKey]metric.MeasurementOption
}

// collect keeps what a processor is handed, for the pipeline's own export.
type collect[T any] struct {
	mu  sync.Mutex
	buf []T
}

func (c *collect[T]) add(v T) { c.mu.Lock(); c.buf = append(c.buf, v); c.mu.Unlock() }

// take returns what was collected; the buffer is reused after reset.
func (c *collect[T]) take() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf
}

func (c *collect[T]) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.buf) // let the records' attributes go
	if cap(c.buf) > 1024 {
		c.buf = nil
	} else {
		c.buf = c.buf[:0]
	}
}

// logCollector is an sdklog.Processor that keeps what is emitted.
type logCollector struct{ c *collect[sdklog.Record] }

func (l logCollector) OnEmit(_ context.Context, r *sdklog.Record) error {
	l.c.add(r.Clone())
	return nil
}
func (logCollector) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (logCollector) Shutdown(context.Context) error                         { return nil }
func (logCollector) ForceFlush(context.Context) error                       { return nil }

// spanCollector is an sdktrace.SpanProcessor that keeps ended spans.
type spanCollector struct {
	c *collect[sdktrace.ReadOnlySpan]
}

func (spanCollector) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (s spanCollector) OnEnd(sp sdktrace.ReadOnlySpan)                { s.c.add(sp) }
func (spanCollector) Shutdown(context.Context) error                  { return nil }
func (spanCollector) ForceFlush(context.Context) error                { return nil }

// idsKey carries a reconstructed span's ids to the generator.
type idsKey struct{}
type spanIDsVal struct {
	tid trace.TraceID
	sid trace.SpanID
}

// eventIDs makes the SDK use the ids derived from the audit event.
type eventIDs struct{}

func (eventIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	ids, _ := ctx.Value(idsKey{}).(spanIDsVal)
	return ids.tid, ids.sid
}

func (eventIDs) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	ids, _ := ctx.Value(idsKey{}).(spanIDsVal)
	return ids.sid
}

// statusMetricExporter records the outcome of the periodic metric exports.
type statusMetricExporter struct {
	sdkmetric.Exporter
	mu  sync.Mutex
	err error
	ok  bool
}

func (s *statusMetricExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	err := s.Exporter.Export(ctx, rm)
	s.mu.Lock()
	s.err, s.ok = err, err == nil
	s.mu.Unlock()
	return err
}

type instruments struct {
	duration   metric.Float64Histogram
	requests   metric.Int64Counter
	errors     metric.Int64Counter
	denials    metric.Int64Counter
	held       metric.Int64Counter
	redactions metric.Int64Counter
}

// New builds the OTLP backend: one exporter per signal in s.Signals, over
// s.Protocol to s.Endpoint.
func New(ctx context.Context, s telemetry.Setup) (telemetry.Backend, error) {
	return newBackend(ctx, s)
}

// The OpenTelemetry SDK reports some failures (a periodic metrics export)
// to its process-wide error handler, which logs them as they are: it is
// routed to the latest backend's Setup.SDKError, which redacts the
// export's header values.
var sdkErrors struct {
	once sync.Once
	cur  atomic.Pointer[func(error)]
}

func routeSDKErrors(f func(error)) {
	if f == nil {
		return
	}
	sdkErrors.cur.Store(&f)
	sdkErrors.once.Do(func() {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			if f := sdkErrors.cur.Load(); f != nil {
				(*f)(err)
			}
		}))
	})
}

func newBackend(ctx context.Context, res telemetry.Setup) (*backend, error) {
	routeSDKErrors(res.SDKError)
	rsc, err := resource.New(ctx,
		resource.WithAttributes(
			attribute.String("service.name", "keyport"),
			attribute.String("service.version", res.Version),
			attribute.String("host.name", res.Host),
			attribute.String("user.name", res.User),
		),
		resource.WithFromEnv(),
	)
	if err != nil && rsc == nil {
		return nil, err
	}
	if len(res.Resource) > 0 {
		var kv []attribute.KeyValue
		for k, v := range res.Resource {
			kv = append(kv, attribute.String(k, v))
		}
		if merged, err := resource.Merge(rsc, resource.NewSchemaless(kv...)); err == nil {
			rsc = merged
		}
	}
	s := &backend{metricAttrs: map[metricKey]metric.MeasurementOption{}}
	grpc := res.Protocol == catalog.ProtocolGRPC
	base := strings.TrimRight(res.Endpoint, "/")
	plain := strings.HasPrefix(base, "http://")
	for _, sig := range res.Signals {
		switch sig {
		case catalog.SignalLogs:
			if grpc {
				opts := []otlploggrpc.Option{otlploggrpc.WithEndpointURL(base), otlploggrpc.WithHeaders(res.Headers),
					otlploggrpc.WithRetry(otlploggrpc.RetryConfig{Enabled: false}), otlploggrpc.WithTimeout(res.Timeout)}
				if res.TLS != nil && !plain {
					opts = append(opts, otlploggrpc.WithTLSCredentials(credentials.NewTLS(res.TLS)))
				}
				s.logExp, err = otlploggrpc.New(ctx, opts...)
			} else {
				opts := []otlploghttp.Option{otlploghttp.WithEndpointURL(base + "/v1/logs"), otlploghttp.WithHeaders(res.Headers),
					otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}), otlploghttp.WithTimeout(res.Timeout)}
				if res.TLS != nil {
					opts = append(opts, otlploghttp.WithTLSClientConfig(res.TLS))
				}
				s.logExp, err = otlploghttp.New(ctx, opts...)
			}
			if err != nil {
				return nil, err
			}
			s.logBuf = &collect[sdklog.Record]{}
			// The attributes' keys are unique by construction: no
			// de-duplication pass per attribute.
			s.logs = sdklog.NewLoggerProvider(sdklog.WithResource(rsc), sdklog.WithProcessor(logCollector{s.logBuf}), sdklog.WithAllowKeyDuplication())
			s.logger = s.logs.Logger(scopeName)
		case catalog.SignalTraces:
			if grpc {
				opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(base), otlptracegrpc.WithHeaders(res.Headers),
					otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}), otlptracegrpc.WithTimeout(res.Timeout)}
				if res.TLS != nil && !plain {
					opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(res.TLS)))
				}
				s.spanExp, err = otlptracegrpc.New(ctx, opts...)
			} else {
				opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(base + "/v1/traces"), otlptracehttp.WithHeaders(res.Headers),
					otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}), otlptracehttp.WithTimeout(res.Timeout)}
				if res.TLS != nil {
					opts = append(opts, otlptracehttp.WithTLSClientConfig(res.TLS))
				}
				s.spanExp, err = otlptracehttp.New(ctx, opts...)
			}
			if err != nil {
				return nil, err
			}
			s.spanBuf = &collect[sdktrace.ReadOnlySpan]{}
			s.tracer = sdktrace.NewTracerProvider(sdktrace.WithResource(rsc), sdktrace.WithIDGenerator(eventIDs{}),
				sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(spanCollector{s.spanBuf}))
		case catalog.SignalMetrics:
			var exp sdkmetric.Exporter
			if grpc {
				opts := []otlpmetricgrpc.Option{otlpmetricgrpc.WithEndpointURL(base), otlpmetricgrpc.WithHeaders(res.Headers),
					otlpmetricgrpc.WithTimeout(res.Timeout)}
				if res.TLS != nil && !plain {
					opts = append(opts, otlpmetricgrpc.WithTLSCredentials(credentials.NewTLS(res.TLS)))
				}
				exp, err = otlpmetricgrpc.New(ctx, opts...)
			} else {
				opts := []otlpmetrichttp.Option{otlpmetrichttp.WithEndpointURL(base + "/v1/metrics"), otlpmetrichttp.WithHeaders(res.Headers),
					otlpmetrichttp.WithTimeout(res.Timeout)}
				if res.TLS != nil {
					opts = append(opts, otlpmetrichttp.WithTLSClientConfig(res.TLS))
				}
				exp, err = otlpmetrichttp.New(ctx, opts...)
			}
			if err != nil {
				return nil, err
			}
			s.metExp = &statusMetricExporter{Exporter: exp}
			s.meter = sdkmetric.NewMeterProvider(sdkmetric.WithResource(rsc),
				sdkmetric.WithReader(sdkmetric.NewPeriodicReader(s.metExp, sdkmetric.WithInterval(res.MetricInterval))))
			if err := s.instruments(res.ProxyUp); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// durationBuckets are the boundaries the MCP conventions give for
// mcp.client.operation.duration, in seconds.
var durationBuckets = []float64{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300}

func (s *backend) instruments(proxyUp func() map[string]bool) error {
	m := s.meter.Meter(scopeName)
	var errs []error
	var err error
	s.inst.duration, err = m.Float64Histogram("mcp.client.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of MCP requests through Keyport's proxy, from the client's request to the answer."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	errs = append(errs, err)
	s.inst.requests, err = m.Int64Counter("keyport.requests", metric.WithUnit("{request}"), metric.WithDescription("MCP requests through Keyport's proxies."))
	errs = append(errs, err)
	s.inst.errors, err = m.Int64Counter("keyport.errors", metric.WithUnit("{request}"), metric.WithDescription("Requests that failed (error, rejected, unreachable, no response)."))
	errs = append(errs, err)
	s.inst.denials, err = m.Int64Counter("keyport.denials", metric.WithUnit("{request}"), metric.WithDescription("Tool calls the tool policy refused."))
	errs = append(errs, err)
	s.inst.held, err = m.Int64Counter("keyport.tools.held", metric.WithUnit("{tool}"), metric.WithDescription("Tools held by tool pinning until approved (audit outcome held)."))
	errs = append(errs, err)
	s.inst.redactions, err = m.Int64Counter("keyport.redactions", metric.WithUnit("{value}"), metric.WithDescription("Secret values redacted from audit events."))
	errs = append(errs, err)
	if proxyUp != nil {
		_, err = m.Int64ObservableGauge("keyport.proxy.up", metric.WithDescription("1 while a server's proxy runs, 0 when it is down."),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				for name, up := range proxyUp() {
					v := int64(0)
					if up {
						v = 1
					}
					o.Observe(v, metric.WithAttributes(attribute.String(attrServer, name)))
				}
				return nil
			}))
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Export implements telemetry.Backend.
func (s *backend) Export(ctx context.Context, signal string, recs []telemetry.Record) error {
	switch signal {
	case catalog.SignalLogs:
		if s.logExp != nil {
			return s.exportLogs(ctx, recs)
		}
	case catalog.SignalTraces:
		if s.spanExp != nil {
			return s.exportSpans(ctx, recs)
		}
	case catalog.SignalMetrics:
		if s.meter != nil {
			s.recordMetrics(ctx, recs)
			return nil
		}
	}
	return fmt.Errorf("telemetry: the %s exporter is not set up", signal)
}

func (s *backend) exportLogs(ctx context.Context, recs []telemetry.Record) error {
	defer s.logBuf.reset()
	now := time.Now()
	var lr otellog.Record
	for i := range recs {
		r := &recs[i]
		s.logKV = logRecord(&lr, r, now, s.logKV)
		s.logger.Emit(context.Background(), lr)
		if r.IsCall() {
			// The record of a request carries its span's ids.
			_, tid, sid := spanIDs(r)
			b := s.logBuf.take()
			last := &b[len(b)-1]
			last.SetTraceID(tid)
			last.SetSpanID(sid)
			last.SetTraceFlags(trace.FlagsSampled)
		}
	}
	return s.logExp.Export(ctx, s.logBuf.take())
}

var spanKind = trace.WithSpanKind(trace.SpanKindClient)

func (s *backend) exportSpans(ctx context.Context, recs []telemetry.Record) error {
	defer s.spanBuf.reset()
	tr := s.tracer.Tracer(scopeName)
	for i := range recs {
		r := &recs[i]
		if !r.IsCall() {
			continue
		}
		parent, tid, sid := spanIDs(r)
		c := context.WithValue(context.Background(), idsKey{}, spanIDsVal{tid, sid})
		if parent.IsValid() {
			c = trace.ContextWithRemoteSpanContext(c, parent)
		}
		name := r.Method
		if r.Tool != "" {
			name += " " + r.Tool
		}
		s.spanKV = append(appendCommon(s.spanKV[:0], r), attribute.String(attrTransport, "tcp"), attribute.String(attrNetProto, "http"))
		_, sp := tr.Start(c, name, spanKind, trace.WithTimestamp(r.Time), trace.WithAttributes(s.spanKV...))
		if r.Failed() {
			sp.SetStatus(codes.Error, r.Error)
		}
		sp.End(trace.WithTimestamp(r.End()))
	}
	spans := s.spanBuf.take()
	if len(spans) == 0 {
		return nil
	}
	return s.spanExp.ExportSpans(ctx, spans)
}

// metricKey is one series of the request metrics.
type metricKey struct{ server, method, tool, outcome, errorType string }

// attrsOf is the measurement option of a series, built once (a backend
// sees few distinct series; the cache is dropped if it ever grows large).
func (s *backend) attrsOf(k metricKey) metric.MeasurementOption {
	if o, ok := s.metricAttrs[k]; ok {
		return o
	}
	if len(s.metricAttrs) > 4096 {
		clear(s.metricAttrs)
	}
	o := metric.WithAttributeSet(attribute.NewSet(attribute.String(attrServer, k.server), attribute.String(attrMethod, k.method),
		attribute.String(attrTool, k.tool), attribute.String(attrOutcome, k.outcome), attribute.String(attrErrorType, k.errorType)))
	s.metricAttrs[k] = o
	return o
}

// recordMetrics feeds the instruments; the periodic reader exports them
// (cumulative, so an export the collector missed is made up by the next).
func (s *backend) recordMetrics(ctx context.Context, recs []telemetry.Record) {
	for i := range recs {
		r := &recs[i]
		if r.Redactions > 0 {
			s.inst.redactions.Add(ctx, int64(r.Redactions), metric.WithAttributes(attribute.String(attrServer, r.Server)))
		}
		if r.Outcome == audit.OutcomeHeld {
			s.inst.held.Add(ctx, 1, metric.WithAttributes(attribute.String(attrServer, r.Server), attribute.String(attrTool, r.Tool)))
		}
		if !r.IsCall() {
			continue
		}
		attrs := s.attrsOf(metricKey{r.Server, r.Method, r.Tool, r.Outcome, r.ErrorType()})
		s.inst.requests.Add(ctx, 1, attrs)
		s.inst.duration.Record(ctx, r.DurationMS/1000, attrs)
		switch r.Outcome {
		case audit.OutcomeOK, audit.OutcomeHeld:
		case audit.OutcomeDenied:
			s.inst.denials.Add(ctx, 1, attrs)
		default:
			s.inst.errors.Add(ctx, 1, attrs)
		}
	}
}

// MetricsStatus is how the last periodic metrics export went (done: one
// was tried).
func (s *backend) MetricsStatus() (done bool, err error) {
	if s.metExp == nil {
		return false, nil
	}
	s.metExp.mu.Lock()
	defer s.metExp.mu.Unlock()
	return s.metExp.ok || s.metExp.err != nil, s.metExp.err
}

// Shutdown implements telemetry.Backend.
func (s *backend) Shutdown(ctx context.Context) error {
	var errs []error
	if s.meter != nil {
		errs = append(errs, s.meter.Shutdown(ctx))
	}
	if s.logExp != nil {
		errs = append(errs, s.logExp.Shutdown(ctx))
	}
	if s.spanExp != nil {
		errs = append(errs, s.spanExp.Shutdown(ctx))
	}
	return errors.Join(errs...)
}
