package telemetry

import (
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"

	"keyport/proxymgr/redact"
)

// The export's headers carry the organization's API key (a secret header
// from the keychain, or OTEL_EXPORTER_OTLP_HEADERS). A collector, or the
// gateway in front of it, that refuses an export may quote the request's
// headers in its answer, and the OTLP exporters put the answer's body in
// their error: that error is what `keyport telemetry status`, the status
// file, the GUI and the log show. So every error text of the export goes
// through the matcher of the header values first (the proxies' matcher:
// raw, JSON-escaped and percent-encoded spellings; a scheme's credential
// alone).

// headerMatcher matches the values of the export's headers.
func headerMatcher(headers map[string]string) *redact.Matcher {
	var forms []string
	for _, v := range headers {
		forms = append(forms, redact.Forms(v)...)
	}
	return redact.Compile(forms...)
}

// errorText is err's text without the export's header values.
func (e *Exporter) errorText(err error) string {
	if err == nil {
		return ""
	}
	out, _ := e.secrets.Replace([]byte(err.Error()))
	return string(out)
}

// The OpenTelemetry SDK reports some failures (a periodic metrics export)
// to its process-wide error handler, which logs them as they are. The
// exporters of this package route it through the latest exporter's
// redaction and logger.
var sdkErrors struct {
	once sync.Once
	cur  atomic.Pointer[Exporter]
}

func routeSDKErrors(e *Exporter) {
	sdkErrors.cur.Store(e)
	sdkErrors.once.Do(func() {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			if e := sdkErrors.cur.Load(); e != nil {
				e.cfg.Logger.Warn("telemetry: the OpenTelemetry SDK reports a failure", "err", e.errorText(err))
			}
		}))
	})
}
