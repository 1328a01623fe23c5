package otlp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"keyport/app/telemetry"
	"keyport/proxymgr/audit"
)

// Attribute keys. Those of OpenTelemetry's semantic conventions for MCP
// (development status, semantic-conventions-genai docs/gen-ai/mcp.md) where
// they exist; keyport.* for the rest.
const (
	attrMethod      = "mcp.method.name"
	attrSession     = "mcp.session.id"
	attrProtocol    = "mcp.protocol.version"
	attrTool        = "gen_ai.tool.name"
	attrOperation   = "gen_ai.operation.name"
	attrRequestID   = "jsonrpc.request.id"
	attrErrorType   = "error.type"
	attrTransport   = "network.transport"
	attrNetProto    = "network.protocol.name"
	attrHTTPStatus  = "http.response.status_code"
	attrServer      = "keyport.server"
	attrEvent       = "keyport.event"
	attrEventID     = "keyport.event_id"
	attrOutcome     = "keyport.outcome"
	attrClientName  = "keyport.client.name"
	attrDurationMS  = "keyport.duration_ms"
	attrError       = "keyport.error"
	attrRedactions  = "keyport.redactions"
	eventName       = "keyport.audit"
	scopeName       = "keyport"
	opExecuteTool   = "execute_tool"
	methodToolsCall = "tools/call"
)

// appendCommon appends the attributes logs and spans share to kv.
func appendCommon(kv []attribute.KeyValue, r *telemetry.Record) []attribute.KeyValue {
	kv = append(kv,
		attribute.String(attrEvent, r.Type),
		attribute.String(attrEventID, r.ID),
		attribute.String(attrServer, r.Server),
	)
	add := func(k, v string) {
		if v != "" {
			kv = append(kv, attribute.String(k, v))
		}
	}
	add(attrMethod, r.Method)
	add(attrTool, r.Tool)
	if r.Method == methodToolsCall {
		add(attrOperation, opExecuteTool)
	}
	add(attrSession, r.Session)
	add(attrProtocol, r.ProtocolVersion)
	add(attrClientName, r.ClientName)
	if len(r.Event.ID) > 0 && string(r.Event.ID) != "null" {
		kv = append(kv, attribute.String(attrRequestID, strings.Trim(string(r.Event.ID), `"`)))
	}
	add(attrOutcome, r.Outcome)
	add(attrErrorType, r.ErrorType())
	add(attrError, r.Error)
	if r.Status != 0 {
		kv = append(kv, attribute.Int(attrHTTPStatus, r.Status))
	}
	return kv
}

// spanIDs are the ids of the span reconstructed from an event: derived
// from the event id, so a re-export yields the same span (a backend keeps
// one), and a child of the client's trace when the request carried W3C
// trace context in params._meta (MCP's convention, SEP-414) and its params
// were logged.
func spanIDs(r *telemetry.Record) (parent trace.SpanContext, tid trace.TraceID, sid trace.SpanID) {
	sum := sha256.Sum256([]byte(r.ID))
	copy(tid[:], sum[:16])
	copy(sid[:], sum[16:24])
	if tp := traceparent(r); tp.IsValid() {
		return tp, tp.TraceID(), sid
	}
	return trace.SpanContext{}, tid, sid
}

// traceparent extracts params._meta.traceparent/tracestate, if logged.
func traceparent(r *telemetry.Record) trace.SpanContext {
	if len(r.Params) == 0 || !bytes.Contains(r.Params, []byte("traceparent")) {
		return trace.SpanContext{}
	}
	var p struct {
		Meta map[string]any `json:"_meta"`
	}
	if json.Unmarshal(r.Params, &p) != nil {
		return trace.SpanContext{}
	}
	carrier := propagation.MapCarrier{}
	for _, k := range []string{"traceparent", "tracestate"} {
		if s, ok := p.Meta[k].(string); ok {
			carrier[k] = s
		}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), carrier)
	return trace.SpanContextFromContext(ctx)
}

func severity(r *telemetry.Record) otellog.Severity {
	switch r.Outcome {
	case audit.OutcomeOK, "":
		return otellog.SeverityInfo
	case audit.OutcomeDenied, audit.OutcomeRejected, audit.OutcomeHeld:
		return otellog.SeverityWarn
	}
	return otellog.SeverityError
}

var severityText = map[otellog.Severity]string{
	otellog.SeverityInfo:  "INFO",
	otellog.SeverityWarn:  "WARN",
	otellog.SeverityError: "ERROR",
}

// logRecord fills lr with the OTLP log record of an event: its body is the
// audit line exactly as written (the same fields, the same redaction), its
// attributes the fields a backend filters on. kv is scratch space for the
// attributes (returned for reuse).
func logRecord(lr *otellog.Record, r *telemetry.Record, observed time.Time, kv []attribute.KeyValue) []attribute.KeyValue {
	*lr = otellog.Record{}
	lr.SetTimestamp(r.Time)
	lr.SetObservedTimestamp(observed)
	lr.SetEventName(eventName)
	sev := severity(r)
	lr.SetSeverity(sev)
	lr.SetSeverityText(severityText[sev])
	lr.SetBody(attribute.StringValue(string(r.Raw)))
	kv = appendCommon(kv[:0], r)
	kv = append(kv, attribute.Float64(attrDurationMS, r.DurationMS))
	if r.Redactions > 0 {
		kv = append(kv, attribute.Int(attrRedactions, r.Redactions))
	}
	lr.AddAttributes(kv...)
	return kv
}
