package telemetry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"keyport/proxymgr/audit"
)

// Record is one audit line, decoded once for every signal: the pipeline
// hands the same records to the logs, traces and metrics backends. Raw
// points into the pipeline's read buffer and is valid only during the
// Backend.Export call that receives it.
type Record struct {
	audit.Event
	// Raw is the audit line exactly as written (without its newline).
	Raw []byte
	// ID is the event id, or a hash of the line for lines written before
	// audit events had ids: stable across re-reads, so a re-export is
	// recognisable.
	ID string
	// Redactions counts the secret values redacted from the line.
	Redactions int
}

// decodeInto decodes raw into r (reusing r's storage); false when the line
// is not an audit event.
func decodeInto(r *Record, raw []byte) bool {
	*r = Record{}
	if err := json.Unmarshal(raw, &r.Event); err != nil || r.Type == "" {
		return false
	}
	r.Raw = raw
	r.ID = r.EventID
	if r.ID == "" {
		sum := sha256.Sum256(raw)
		r.ID = "sha256-" + hex.EncodeToString(sum[:16])
	}
	r.Redactions = bytes.Count(raw, redactedMark)
	return true
}

var redactedMark = []byte(audit.Redacted)

// IsCall reports whether the event stands for a request through the proxy
// (answered, failed or denied): those get a span and the request metrics.
func (r *Record) IsCall() bool {
	return (r.Type == audit.TypeRequest || r.Type == audit.TypeDenial) && r.Method != ""
}

// Failed reports whether the request did not succeed.
func (r *Record) Failed() bool {
	return r.Outcome != audit.OutcomeOK && r.Outcome != ""
}

// ErrorType is the semantic conventions' error.type: the outcome's class
// when the call failed ("" otherwise). The audit log does not keep the
// JSON-RPC error code the convention prefers.
func (r *Record) ErrorType() string {
	if !r.Failed() {
		return ""
	}
	return r.Outcome
}

// End is when the request was answered (its start is Time).
func (r *Record) End() time.Time {
	return r.Time.Add(time.Duration(r.DurationMS * float64(time.Millisecond)))
}
