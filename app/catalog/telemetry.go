package catalog

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// TelemetrySecretOwner is the keychain "server" under which the secret
// headers of the OpenTelemetry export live (kind "header/NAME"). It holds a
// dot, so no catalog server can ever be called that.
const TelemetrySecretOwner = "keyport.telemetry"

// Telemetry protocols (OTLP).
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// Telemetry signals.
const (
	SignalLogs    = "logs"
	SignalMetrics = "metrics"
	SignalTraces  = "traces"
)

// Telemetry configures the export of the audit log, metrics and traces to
// an OpenTelemetry collector (`telemetry:` in servers.yaml or in the
// managed file). The standard OTEL_EXPORTER_OTLP_* environment variables
// fill what it leaves unset.
type Telemetry struct {
	// Endpoint is the collector's OTLP base URL: https://host:4318 for
	// http/protobuf (the /v1/logs ... paths are added), https://host:4317
	// for grpc. Empty: OTEL_EXPORTER_OTLP_ENDPOINT, else no export.
	Endpoint string `yaml:"endpoint,omitempty"`
	// Protocol is grpc or http/protobuf (default: OTEL_EXPORTER_OTLP_PROTOCOL,
	// else http/protobuf).
	Protocol string `yaml:"protocol,omitempty"`
	// Headers are non-secret headers sent with every export.
	Headers map[string]string `yaml:"headers,omitempty"`
	// SecretHeaders are headers whose values are in the OS keychain
	// (owner keyport.telemetry, kind header/NAME).
	SecretHeaders []string `yaml:"secret_headers,omitempty"`
	// Insecure allows plain http (or grpc without TLS) to a host that is
	// not the loopback.
	Insecure bool `yaml:"insecure,omitempty"`
	// TLS adds trusted CAs for the collector.
	TLS TLS `yaml:"tls,omitempty"`
	// Resource are extra resource attributes (service.name is keyport,
	// host.name and user.name are set by Keyport).
	Resource map[string]string `yaml:"resource,omitempty"`
	// Signals to export (default all: logs, metrics, traces).
	Signals []string `yaml:"signals,omitempty"`
	// BacklogLimitMB is the backlog (audit bytes not yet exported) past
	// which Keyport warns in its status, the tray and the logs (default 32).
	BacklogLimitMB int `yaml:"backlog_limit_mb,omitempty"`
	// Disabled turns the export off while keeping its settings.
	Disabled bool `yaml:"disabled,omitempty"`
}

var telemetryFields = []string{"endpoint", "protocol", "headers", "secret_headers", "insecure", "tls", "resource", "signals", "backlog_limit_mb", "disabled"}

// Check validates t and fills defaults. Like Server.Check, its messages
// never quote a URL or a header value.
func (t *Telemetry) Check() error {
	var errs FieldErrors
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	switch t.Protocol {
	case "", ProtocolGRPC, ProtocolHTTP:
	case "http":
		t.Protocol = ProtocolHTTP
	default:
		add("protocol", "%q is not one of grpc, http/protobuf", t.Protocol)
	}
	if t.Endpoint != "" {
		if msg := checkEndpoint(t.Endpoint, t.Insecure); msg != "" {
			add("endpoint", "%s", msg)
		}
	}
	seen := map[string]string{}
	for _, k := range sortedKeys(t.Headers) {
		if !headerRE.MatchString(k) {
			add("headers."+k, "%q is not a valid header name", k)
			continue
		}
		seen[canonical(k)] = k
		v := t.Headers[k]
		switch {
		case canonical(k) == "Authorization" || looksLikeCredential(v):
			add("headers."+k, "is a credential: list it in secret_headers so its value stays in the OS keychain (keyport telemetry secret set %s)", k)
		case strings.ContainsAny(v, "\r\n\x00"):
			add("headers."+k, "value must not contain a line break or NUL")
		}
	}
	for i, h := range t.SecretHeaders {
		field := fmt.Sprintf("secret_headers[%d]", i)
		if !headerRE.MatchString(h) {
			add(field, "%q is not a valid header name", h)
		} else if _, dup := seen[canonical(h)]; dup {
			add(field, "%q is listed twice (a header is either secret or not)", h)
		}
		seen[canonical(h)] = h
	}
	for _, k := range sortedKeys(t.Resource) {
		if k == "" || strings.ContainsAny(k, " \t\r\n") {
			add("resource."+k, "%q is not a valid attribute name", k)
		}
	}
	for i, s := range t.Signals {
		if !slices.Contains([]string{SignalLogs, SignalMetrics, SignalTraces}, s) {
			add(fmt.Sprintf("signals[%d]", i), "%q is not one of logs, metrics, traces", s)
		}
	}
	if t.BacklogLimitMB < 0 {
		add("backlog_limit_mb", "must be 0 (default 32) or more")
	}
	if t.TLS.CAFile != "" {
		if msg := checkCAFile(t.TLS.CAFile); msg != "" {
			add("tls.ca_file", "%s", msg)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// Exports reports whether signal is exported (every signal when Signals
// is empty).
func (t *Telemetry) Exports(signal string) bool {
	return t != nil && (len(t.Signals) == 0 || slices.Contains(t.Signals, signal))
}

func checkEndpoint(raw string, insecure bool) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return "not a valid URL: give the collector's base URL, e.g. https://otel.example.com:4318"
	}
	if u.User != nil {
		return "must not contain a user name or password: use secret_headers"
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "must not have a query or #fragment"
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !insecure && !isLoopback(u.Hostname()) {
			return "plain http is allowed only for localhost; use https (or set insecure: true if you really mean it)"
		}
	default:
		return fmt.Sprintf("scheme %q is not supported: use https:// (or http:// for localhost)", u.Scheme)
	}
	return ""
}

// telemetry parses the `telemetry:` mapping (of servers.yaml or the
// managed file).
func (p *parser) telemetry(v *yaml.Node, prefix string) *Telemetry {
	if isNull(v) {
		return nil
	}
	t := &Telemetry{}
	lines := map[string]int{"": v.Line}
	f := fields{p: p, prefix: prefix, lines: lines}
	if v.Kind != yaml.MappingNode {
		p.add(v.Line, prefix, "must be a mapping (endpoint: ..., protocol: ...)")
		return nil
	}
	before := len(p.problems)
	p.duplicates(v, prefix+".")
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], deref(v.Content[i+1])
		lines[k.Value] = k.Line
		switch k.Value {
		case "endpoint":
			t.Endpoint = f.str(val, "endpoint")
		case "protocol":
			t.Protocol = f.str(val, "protocol")
		case "headers":
			t.Headers = f.strMap(val, "headers")
		case "secret_headers":
			t.SecretHeaders = f.strList(val, "secret_headers")
		case "insecure":
			t.Insecure = f.boolean(val, "insecure")
		case "tls":
			f.mapping(val, "tls", []string{"ca_file"}, func(_ string, v *yaml.Node) {
				t.TLS.CAFile = f.str(v, "tls.ca_file")
			})
		case "resource":
			t.Resource = f.strMap(val, "resource")
		case "signals":
			t.Signals = f.strList(val, "signals")
		case "backlog_limit_mb":
			t.BacklogLimitMB = f.integer(val, "backlog_limit_mb")
		case "disabled":
			t.Disabled = f.boolean(val, "disabled")
		default:
			p.unknown(k, prefix+"."+k.Value, telemetryFields)
		}
	}
	if len(p.problems) > before {
		return nil
	}
	if err := t.Check(); err != nil {
		if fes, ok := err.(FieldErrors); ok {
			for _, fe := range fes {
				p.add(lineOf(lines, fe.Field), prefix+"."+fe.Field, "%s", fe.Msg)
			}
		}
		return nil
	}
	return t
}
