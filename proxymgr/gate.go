package proxymgr

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"keyport/proxymgr/audit"
)

// This file is the request gate: the decisions the proxy takes about each
// client message before anything is forwarded. A message that fails a check
// is answered by the proxy itself and never reaches the server.
//
// The rule behind every check: the proxy must never read a request
// differently from the server that will run it. parseMessage refuses
// ambiguous keys; the gate refuses a tools/call whose tool it cannot name
// and standard headers (Mcp-Method, Mcp-Name) that disagree with the body a
// server or a gateway in front of it may route on.

// gate decides about one parsed client message. It returns a nil answer to
// forward the message, or the JSON-RPC answer the proxy gives instead;
// invalid says the message is not a valid request at all (a POST of only
// such messages is answered 400).
func (p *Proxy) gate(m *message, sess *session, ci clientInfo, now time.Time) (answer []byte, invalid bool) {
	if m.method != "tools/call" || !m.hasMethod {
		return nil, false
	}
	if !m.isRequest() {
		// A server must not run a notification, but some would; there is no
		// id to answer a denial with, so no tools/call passes as one.
		return p.refuse(m, "", sess, ci, now, codeInvalidRequest,
			"invalid request: tools/call must be a request with an id"), true
	}
	tool, ok := toolName(m.params)
	if !ok {
		return p.refuse(m, "", sess, ci, now, codeInvalidParams,
			"invalid params: tools/call needs params.name, the tool's name as a string"), false
	}
	if !plainName(tool) {
		// A server that trims the name or reads it as a C string would run
		// another tool than the one the policy checked.
		return p.refuse(m, tool, sess, ci, now, codeInvalidParams, fmt.Sprintf(
			"invalid params: tool name %q has control characters or surrounding spaces", tool)), false
	}
	if !p.pol.Allowed(tool) {
		return p.deny(m, tool, sess, ci, now), false
	}
	if why, old, cur := p.heldCall(tool); why != "" { // tool pinning (pinning.go)
		return p.refuseHeld(m, tool, why, old, cur, sess, ci, now), false
	}
	return nil, false
}

// toolName is params.name of a tools/call, when params is an object whose
// name is a string.
func toolName(params []byte) (string, bool) {
	if len(params) == 0 || params[0] != '{' {
		return "", false
	}
	return paramString(params, "name")
}

// plainName reports whether a tool name is one a server cannot read as
// another: no control characters (NUL included) and no leading or trailing
// white space.
func plainName(s string) bool {
	if strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// refuse answers a request the gate will not forward (other than a policy
// denial) and audits it with the tool the server would have run.
func (p *Proxy) refuse(m *message, tool string, sess *session, ci clientInfo, now time.Time, code int, msg string) []byte {
	p.errs.Add(1)
	if p.audit != nil {
		e := audit.Event{Time: now, Type: audit.TypeRequest, Server: p.name, Method: m.method, ID: m.id, Tool: tool,
			ClientName: ci.name, ClientVersion: ci.version, Via: ci.via, ParamsSize: len(m.params), Params: p.auditParams(m.params),
			Outcome: audit.OutcomeRejected, Error: msg}
		if sess != nil {
			e.Session = sess.id
		}
		p.audit.Log(e)
	}
	p.log.Info("refused a request", "method", m.method, "tool", tool, "why", msg)
	return rpcError(m.id, code, msg)
}

// refuseAmbiguous answers a message parseMessage refused (err). Ambiguous
// keys are an attack or a broken client: the audit log records what each
// kind of server would have run, and the answer has a null id (which id the
// server would read is ambiguous too).
func (p *Proxy) refuseAmbiguous(m *message, err error, sess *session, ci clientInfo, now time.Time) []byte {
	msg := "invalid request: " + err.Error() + "; send each key once, in the spec's case"
	if !errors.Is(err, errDuplicateKey) {
		p.errs.Add(1)
		return rpcError(m.id, codeInvalidRequest, msg)
	}
	rs := readAmbiguous(m.raw)
	e := message{raw: m.raw, method: rs.exact.method, hasMethod: rs.exact.method != "", params: nil}
	why := msg
	if rs.folded.method != rs.exact.method || rs.folded.tool != rs.exact.tool {
		why += fmt.Sprintf(" (servers that match keys exactly would run %s, Go's encoding/json %s)",
			describeReading(rs.exact), describeReading(rs.folded))
	}
	p.refuse(&e, rs.exact.tool, sess, ci, now, codeInvalidRequest, why)
	return rpcError(nil, codeInvalidRequest, msg)
}

func describeReading(r reading) string {
	switch {
	case r.method == "":
		return "no method"
	case r.tool != "":
		return fmt.Sprintf("%s of tool %q", r.method, r.tool)
	default:
		return r.method
	}
}

// checkStandardHeaders compares the request headers of the 2026-07-28 era
// (SEP-2243: Mcp-Method, Mcp-Name), when present, with the one message of
// the body. Servers must refuse a mismatch, but a gateway in front of one
// may route on the headers alone: the proxy refuses it first.
func checkStandardHeaders(h http.Header, m *message) error {
	if vs := h.Values("Mcp-Method"); len(vs) > 0 {
		if len(vs) > 1 || vs[0] != m.method {
			return fmt.Errorf("the Mcp-Method header %q does not match the body's method %q", strings.Join(vs, ", "), m.method)
		}
	}
	vs := h.Values("Mcp-Name")
	var key string
	switch m.method {
	case "tools/call", "prompts/get":
		key = "name"
	case "resources/read":
		key = "uri"
	}
	if len(vs) == 0 || key == "" { // Mcp-Name mirrors only these methods
		return nil
	}
	name, ok := paramString(m.params, key)
	if len(vs) > 1 || !ok || (vs[0] != name && decodeHeaderValue(vs[0]) != name) {
		return fmt.Errorf("the Mcp-Name header %q does not match the body's params.%s %q", strings.Join(vs, ", "), key, name)
	}
	return nil
}

// decodeHeaderValue decodes a SEP-2243 header value: =?base64?…?= is the
// base64 of the value's UTF-8 bytes; anything else is the value itself.
func decodeHeaderValue(v string) string {
	inner, ok := strings.CutPrefix(v, "=?base64?")
	if !ok {
		return v
	}
	inner, ok = strings.CutSuffix(inner, "?=")
	if !ok {
		return v
	}
	b, err := base64.StdEncoding.DecodeString(inner)
	if err != nil {
		return v
	}
	return string(b)
}
