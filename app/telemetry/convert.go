package telemetry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

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
	outcomeHeld     = "held" // tool pinning held a changed tool (counted by keyport.tools.held)
	eventName       = "keyport.audit"
	scopeName       = "keyport"
	opExecuteTool   = "execute_tool"
	methodToolsCall = "tools/call"
)

// record is one audit line, decoded.
type record struct {
	audit.Event
	raw        []byte
	id         string // the event id, or a hash of the line for lines written before ids
	redactions int
}

func decode(raw []byte) (record, bool) {
	var r record
	if err := json.Unmarshal(raw, &r.Event); err != nil || r.Type == "" {
		return r, false
	}
	r.raw = raw
	r.id = r.EventID
	if r.id == "" {
		sum := sha256.Sum256(raw)
		r.id = "sha256-" + hex.EncodeToString(sum[:16])
	}
	r.redactions = bytes.Count(raw, []byte(audit.Redacted))
	return r, true
}

// isCall reports whether the event stands for a request through the proxy
// (answered, failed or denied): those get a span.
func (r *record) isCall() bool {
	return (r.Type == audit.TypeRequest || r.Type == audit.TypeDenial) && r.Method != ""
}

func (r *record) failed() bool {
	return r.Outcome != audit.OutcomeOK && r.Outcome != ""
}

// errorType is error.type: the outcome's class when the call failed.
func (r *record) errorType() string {
	if !r.failed() {
		return ""
	}
	return r.Outcome
}

func (r *record) start() time.Time { return r.Time }
func (r *record) end() time.Time {
	return r.Time.Add(time.Duration(r.DurationMS * float64(time.Millisecond)))
}

// common are the attributes logs and spans share.
func (r *record) common() []attribute.KeyValue {
	kv := []attribute.KeyValue{
		attribute.String(attrEvent, r.Type),
		attribute.String(attrEventID, r.id),
		attribute.String(attrServer, r.Server),
	}
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
	if len(r.ID) > 0 && string(r.ID) != "null" {
		kv = append(kv, attribute.String(attrRequestID, strings.Trim(string(r.ID), `"`)))
	}
	add(attrOutcome, r.Outcome)
	add(attrErrorType, r.errorType())
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
func (r *record) spanIDs() (parent trace.SpanContext, tid trace.TraceID, sid trace.SpanID) {
	sum := sha256.Sum256([]byte(r.id))
	copy(tid[:], sum[:16])
	copy(sid[:], sum[16:24])
	if tp := r.traceparent(); tp.IsValid() {
		return tp, tp.TraceID(), sid
	}
	return trace.SpanContext{}, tid, sid
}

// traceparent extracts params._meta.traceparent/tracestate, if logged.
func (r *record) traceparent() trace.SpanContext {
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

func (r *record) severity() otellog.Severity {
	switch r.Outcome {
	case audit.OutcomeOK, "":
		return otellog.SeverityInfo
	case audit.OutcomeDenied, audit.OutcomeRejected, outcomeHeld:
		return otellog.SeverityWarn
	}
	return otellog.SeverityError
}

// logRecord is the OTLP log record of an event: its body is the audit line
// exactly as written (the same fields, the same redaction), its attributes
// the fields a backend filters on.
func (r *record) logRecord() otellog.Record {
	var lr otellog.Record
	lr.SetTimestamp(r.Time)
	lr.SetObservedTimestamp(time.Now())
	lr.SetEventName(eventName)
	lr.SetSeverity(r.severity())
	lr.SetSeverityText(strings.ToUpper(r.severity().String()))
	lr.SetBody(attribute.StringValue(string(r.raw)))
	lr.AddAttributes(r.common()...)
	lr.AddAttributes(attribute.Float64(attrDurationMS, r.DurationMS))
	if r.redactions > 0 {
		lr.AddAttributes(attribute.Int(attrRedactions, r.redactions))
	}
	return lr
}
