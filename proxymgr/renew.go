package proxymgr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"keyport/proxymgr/audit"
)

// ErrRetryRequest is what a CredentialsRejected or CredentialsForbidden
// hook returns (errors.Is) when it has new credentials ready, e.g. after a
// refresh or a new sign-in with more scopes: the proxy sends the client's
// request upstream once more with them, and the client sees only the second
// answer. A request is sent again at most once.
var ErrRetryRequest = errors.New("new credentials are ready: send the request again")

// retriedKey marks the context of a request the proxy sent again.
type retriedKey struct{}

// Retried reports whether ctx is that of a request the proxy already sent
// again with new credentials. A hook called with it must not start another
// sign-in: whatever it returns, the request is not sent a third time.
func Retried(ctx context.Context) bool { return ctx.Value(retriedKey{}) != nil }

// credentialHook is the hook for an upstream answer with status, or nil.
func (p *Proxy) credentialHook(status int) func(ctx context.Context, respHeader, sent http.Header) error {
	switch {
	case status == http.StatusUnauthorized && p.cfg.CredentialsRejected != nil:
		return p.cfg.CredentialsRejected
	case status == http.StatusForbidden && p.cfg.CredentialsForbidden != nil:
		return p.cfg.CredentialsForbidden
	}
	return nil
}

// renew is the stage between the upstream's answer and the relay that
// gives the credential hooks their say over a 401 or 403. When a hook has
// new credentials ready (ErrRetryRequest), the request goes upstream once
// more through resend and that answer is the one considered; a hook's
// other error answers the client with 503 and its text (never 401: a
// client would start its own OAuth flow against localhost); a 403 a hook
// lets pass (nil) is relayed. It returns the response to relay, or nil
// when it answered the client itself. The caller closes what it returns.
func (p *Proxy) renew(w http.ResponseWriter, r *http.Request, resp *http.Response, rc *respCtx,
	resend func(ctx context.Context) (*http.Response, error)) *http.Response {
	ctx := r.Context()
	for {
		hook := p.credentialHook(resp.StatusCode)
		if hook == nil {
			return resp
		}
		err := hook(ctx, resp.Header, sentHeader(resp))
		retry := errors.Is(err, ErrRetryRequest)
		if retry && !Retried(ctx) {
			drain(resp)
			ctx = context.WithValue(ctx, retriedKey{}, true)
			p.log.Info("new credentials are ready; sending the request again", "status", resp.StatusCode)
			next, err := resend(ctx)
			if err != nil {
				p.failRequest(w, r, rc, err)
				return nil
			}
			resp = next
			continue
		}
		var msg string
		switch {
		case err != nil && !retry:
			msg = err.Error()
		case resp.StatusCode == http.StatusForbidden:
			return resp // the hook lets it pass
		default:
			msg = fmt.Sprintf("%s refused the credentials Keyport sent (HTTP 401); update or renew them in Keyport", p.name)
		}
		drain(resp)
		p.log.Warn("the server refused the credentials; answered 503", "status", resp.StatusCode)
		rc.answerAll(w, http.StatusServiceUnavailable, codeInternalError, msg, audit.OutcomeRejected)
		return nil
	}
}

// drain reads what is left of a small error body and closes it, so the
// connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
