package proxymgr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
)

// JSON-RPC error codes the proxy answers with.
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeInvalidParams  = -32602 // a tool the policy denies
	codeInternalError  = -32603 // the upstream is unreachable or answered garbage
	codeSessionMissing = -32001 // the upstream does not know the session
	codeHeaderMismatch = -32020 // SEP-2243: a standard header disagrees with the body
)

// ErrPortInUse is wrapped by the error Start returns when another program
// holds the requested port.
var ErrPortInUse = errors.New("port in use")

// rpcError builds a JSON-RPC error response. id is the request's raw id
// (nil: null).
func rpcError(id []byte, code int, msg string) []byte {
	if len(id) == 0 {
		id = []byte("null")
	}
	m, _ := json.Marshal(msg)
	b := make([]byte, 0, 64+len(id)+len(m))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"error":{"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"message":`...)
	b = append(b, m...)
	return append(b, "}}"...)
}

// writeJSON writes body as an application/json response.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Del("Content-Encoding")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// joinResponses returns one response, or a batch of them.
func joinResponses(rs [][]byte, batch bool) []byte {
	if !batch && len(rs) == 1 {
		return rs[0]
	}
	n := 2
	for _, r := range rs {
		n += len(r) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, r := range rs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, r...)
	}
	return append(out, ']')
}

// reason describes why an upstream request failed, without the URL (which
// may carry an API key in its query).
func reason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var (
		dnsErr  *net.DNSError
		opErr   *net.OpError
		certErr *tls.CertificateVerificationError
		unkAuth x509.UnknownAuthorityError
		hostErr x509.HostnameError
		recErr  tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot resolve %s", dnsErr.Name)
	case errors.As(err, &unkAuth), errors.As(err, &hostErr), errors.As(err, &certErr):
		return fmt.Sprintf("TLS certificate not trusted: %v (give the server's CA file in Keyport if it uses a private CA)", err)
	case errors.As(err, &recErr):
		return "the server does not speak TLS (is the URL http:// rather than https://?)"
	case errors.Is(err, syscall.ECONNREFUSED):
		if errors.As(err, &opErr) && opErr.Addr != nil {
			return fmt.Sprintf("connection refused by %s", opErr.Addr)
		}
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.As(err, &opErr):
		if opErr.Err != nil {
			return opErr.Op + ": " + opErr.Err.Error()
		}
	}
	return err.Error()
}
