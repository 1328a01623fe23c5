package telemetry

import (
	"context"
	"errors"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"

	"keyport/app/catalog"
	"keyport/proxymgr/audit"
)

// sinks hold the SDK's providers and OTLP exporters. Logs and spans are
// built with the SDK (so they carry the resource and scope) but collected
// synchronously and exported by the pipeline itself, which alone decides
// when a batch is delivered; the SDK's own batching and retries, which
// drop data when the collector stays away, are not used.
type sinks struct {
	logs    *sdklog.LoggerProvider
	logExp  sdklog.Exporter
	logBuf  *collect[sdklog.Record]
	tracer  *sdktrace.TracerProvider
	spanExp *otlptrace.Exporter
	spanBuf *collect[sdktrace.ReadOnlySpan]
	meter   *sdkmetric.MeterProvider
	metExp  *statusMetricExporter
	inst    instruments
}

type collect[T any] struct {
	mu  sync.Mutex
	buf []T
}

func (c *collect[T]) add(v T) { c.mu.Lock(); c.buf = append(c.buf, v); c.mu.Unlock() }
func (c *collect[T]) take() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buf
	c.buf = nil
	return b
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
type spanIDs struct {
	tid trace.TraceID
	sid trace.SpanID
}

// eventIDs makes the SDK use the ids derived from the audit event.
type eventIDs struct{}

func (eventIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	ids, _ := ctx.Value(idsKey{}).(spanIDs)
	return ids.tid, ids.sid
}

func (eventIDs) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	ids, _ := ctx.Value(idsKey{}).(spanIDs)
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

func newSinks(ctx context.Context, cfg *Config, res Resolved, host [2]string) (*sinks, error) {
	rsc, err := resource.New(ctx,
		resource.WithAttributes(
			attribute.String("service.name", "keyport"),
			attribute.String("service.version", cfg.Version),
			attribute.String("host.name", host[0]),
			attribute.String("user.name", host[1]),
		),
		resource.WithFromEnv(),
	)
	if err != nil && rsc == nil {
		return nil, err
	}
	if cfg.Settings != nil && len(cfg.Settings.Resource) > 0 {
		var kv []attribute.KeyValue
		for k, v := range cfg.Settings.Resource {
			kv = append(kv, attribute.String(k, v))
		}
		if merged, err := resource.Merge(rsc, resource.NewSchemaless(kv...)); err == nil {
			rsc = merged
		}
	}
	s := &sinks{}
	grpc := res.Protocol == catalog.ProtocolGRPC
	base := strings.TrimRight(res.Endpoint, "/")
	plain := strings.HasPrefix(base, "http://")
	for _, sig := range res.Signals {
		switch sig {
		case catalog.SignalLogs:
			if grpc {
				opts := []otlploggrpc.Option{otlploggrpc.WithEndpointURL(base), otlploggrpc.WithHeaders(res.Headers),
					otlploggrpc.WithRetry(otlploggrpc.RetryConfig{Enabled: false}), otlploggrpc.WithTimeout(cfg.Timeout)}
				if res.TLS != nil && !plain {
					opts = append(opts, otlploggrpc.WithTLSCredentials(credentials.NewTLS(res.TLS)))
				}
				s.logExp, err = otlploggrpc.New(ctx, opts...)
			} else {
				opts := []otlploghttp.Option{otlploghttp.WithEndpointURL(base + "/v1/logs"), otlploghttp.WithHeaders(res.Headers),
					otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}), otlploghttp.WithTimeout(cfg.Timeout)}
				if res.TLS != nil {
					opts = append(opts, otlploghttp.WithTLSClientConfig(res.TLS))
				}
				s.logExp, err = otlploghttp.New(ctx, opts...)
			}
			if err != nil {
				return nil, err
			}
			s.logBuf = &collect[sdklog.Record]{}
			s.logs = sdklog.NewLoggerProvider(sdklog.WithResource(rsc), sdklog.WithProcessor(logCollector{s.logBuf}))
		case catalog.SignalTraces:
			if grpc {
				opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(base), otlptracegrpc.WithHeaders(res.Headers),
					otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}), otlptracegrpc.WithTimeout(cfg.Timeout)}
				if res.TLS != nil && !plain {
					opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(res.TLS)))
				}
				s.spanExp, err = otlptracegrpc.New(ctx, opts...)
			} else {
				opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(base + "/v1/traces"), otlptracehttp.WithHeaders(res.Headers),
					otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}), otlptracehttp.WithTimeout(cfg.Timeout)}
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
					otlpmetricgrpc.WithTimeout(cfg.Timeout)}
				if res.TLS != nil && !plain {
					opts = append(opts, otlpmetricgrpc.WithTLSCredentials(credentials.NewTLS(res.TLS)))
				}
				exp, err = otlpmetricgrpc.New(ctx, opts...)
			} else {
				opts := []otlpmetrichttp.Option{otlpmetrichttp.WithEndpointURL(base + "/v1/metrics"), otlpmetrichttp.WithHeaders(res.Headers),
					otlpmetrichttp.WithTimeout(cfg.Timeout)}
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
				sdkmetric.WithReader(sdkmetric.NewPeriodicReader(s.metExp, sdkmetric.WithInterval(cfg.MetricInterval))))
			if err := s.instruments(cfg); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// durationBuckets are the boundaries the MCP conventions give for
// mcp.client.operation.duration, in seconds.
var durationBuckets = []float64{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300}

func (s *sinks) instruments(cfg *Config) error {
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
	if cfg.ProxyUp != nil {
		_, err = m.Int64ObservableGauge("keyport.proxy.up", metric.WithDescription("1 while a server's proxy runs, 0 when it is down."),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				for name, up := range cfg.ProxyUp() {
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

func (s *sinks) forSignal(sig string) func(context.Context, []record) error {
	switch sig {
	case catalog.SignalLogs:
		return s.exportLogs
	case catalog.SignalTraces:
		return s.exportSpans
	}
	return s.recordMetrics
}

func (s *sinks) exportLogs(ctx context.Context, recs []record) error {
	lg := s.logs.Logger(scopeName)
	for i := range recs {
		r := &recs[i]
		c := context.Background()
		if r.isCall() {
			_, tid, sid := r.spanIDs()
			c = trace.ContextWithSpanContext(c, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
		}
		lg.Emit(c, r.logRecord())
	}
	return s.logExp.Export(ctx, s.logBuf.take())
}

func (s *sinks) exportSpans(ctx context.Context, recs []record) error {
	tr := s.tracer.Tracer(scopeName)
	for i := range recs {
		r := &recs[i]
		if !r.isCall() {
			continue
		}
		parent, tid, sid := r.spanIDs()
		c := context.WithValue(context.Background(), idsKey{}, spanIDs{tid, sid})
		if parent.IsValid() {
			c = trace.ContextWithRemoteSpanContext(c, parent)
		}
		name := r.Method
		if r.Tool != "" {
			name += " " + r.Tool
		}
		attrs := append(r.common(), attribute.String(attrTransport, "tcp"), attribute.String(attrNetProto, "http"))
		_, sp := tr.Start(c, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(r.start()), trace.WithAttributes(attrs...))
		if r.failed() {
			sp.SetStatus(codes.Error, r.Error)
		}
		sp.End(trace.WithTimestamp(r.end()))
	}
	spans := s.spanBuf.take()
	if len(spans) == 0 {
		return nil
	}
	return s.spanExp.ExportSpans(ctx, spans)
}

// recordMetrics feeds the instruments; the periodic reader exports them
// (cumulative, so an export the collector missed is made up by the next).
func (s *sinks) recordMetrics(ctx context.Context, recs []record) error {
	for i := range recs {
		r := &recs[i]
		if r.redactions > 0 {
			s.inst.redactions.Add(ctx, int64(r.redactions), metric.WithAttributes(attribute.String(attrServer, r.Server)))
		}
		if r.Outcome == outcomeHeld {
			s.inst.held.Add(ctx, 1, metric.WithAttributes(attribute.String(attrServer, r.Server), attribute.String(attrTool, r.Tool)))
		}
		if !r.isCall() {
			continue
		}
		attrs := metric.WithAttributes(attribute.String(attrServer, r.Server), attribute.String(attrMethod, r.Method),
			attribute.String(attrTool, r.Tool), attribute.String(attrOutcome, r.Outcome), attribute.String(attrErrorType, r.errorType()))
		s.inst.requests.Add(ctx, 1, attrs)
		s.inst.duration.Record(ctx, r.DurationMS/1000, attrs)
		switch r.Outcome {
		case audit.OutcomeOK, outcomeHeld:
		case audit.OutcomeDenied:
			s.inst.denials.Add(ctx, 1, attrs)
		default:
			s.inst.errors.Add(ctx, 1, attrs)
		}
	}
	return nil // counted: the periodic reader delivers (metricsStatus says how that goes)
}

// metricsStatus is how the last periodic metrics export went (done: one
// was tried).
func (s *sinks) metricsStatus() (done bool, err error) {
	if s.metExp == nil {
		return false, nil
	}
	s.metExp.mu.Lock()
	defer s.metExp.mu.Unlock()
	return s.metExp.ok || s.metExp.err != nil, s.metExp.err
}

func (s *sinks) shutdown(ctx context.Context) error {
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
