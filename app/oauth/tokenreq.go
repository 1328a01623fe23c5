package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxTokenResponse bounds what Keyport reads from a token endpoint.
const maxTokenResponse = 1 << 20

// tokenResponse is a successful token endpoint answer (RFC 6749 section 5.1).
type tokenResponse struct {
	AccessToken  string
	TokenType    string
	RefreshToken string
	// ExpiresIn is the lifetime in seconds; 0 when the server did not say.
	ExpiresIn int64
	// Scope is the granted scope, "" when the server did not say.
	Scope string
}

// applyClientAuth adds the client's credentials to a token, revocation or
// refresh request, the way its auth method says (RFC 6749 section 2.3.1).
func applyClientAuth(req *http.Request, form url.Values, c clientInfo) {
	switch c.AuthMethod {
	case "client_secret_basic":
		// RFC 6749 2.3.1: both parts are form-urlencoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	case "client_secret_post":
		form.Set("client_id", c.ID)
		form.Set("client_secret", c.Secret)
	default: // "none": a public client names itself.
		form.Set("client_id", c.ID)
	}
}

// postForm sends form to endpoint with the client's authentication and
// returns the status, content type and (bounded) body.
func postForm(ctx context.Context, hc *http.Client, endpoint string, form url.Values, c clientInfo) (int, string, []byte, error) {
	// The client auth may add fields, so encode after applying it.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return 0, "", nil, fmt.Errorf("token endpoint %q: %w", endpoint, err)
	}
	applyClientAuth(req, form, c)
	body := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", nil, fmt.Errorf("reach %s: %w", endpoint, scrubURLError(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return 0, "", nil, fmt.Errorf("read the answer of %s: %w", endpoint, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), raw, nil
}

// requestToken posts a token request and parses the answer.
func requestToken(ctx context.Context, hc *http.Client, endpoint string, form url.Values, c clientInfo) (*tokenResponse, error) {
	status, ctype, body, err := postForm(ctx, hc, endpoint, form, c)
	if err != nil {
		return nil, err
	}
	return parseTokenResponse(endpoint, status, ctype, body)
}

// parseTokenResponse parses a token endpoint answer: JSON as RFC 6749 says,
// or form-encoded as some older servers send. Errors never quote tokens.
func parseTokenResponse(endpoint string, status int, contentType string, body []byte) (*tokenResponse, error) {
	fields, err := decodeTokenBody(contentType, body)
	if err != nil {
		if status != http.StatusOK {
			return nil, &TokenError{Endpoint: endpoint, Status: status}
		}
		return nil, fmt.Errorf("%s answered %d with an unreadable body: %v", endpoint, status, err)
	}
	if code := fields.str("error"); code != "" || status != http.StatusOK {
		return nil, &TokenError{
			Endpoint:    endpoint,
			Status:      status,
			Code:        sanitize(code, 64),
			Description: sanitize(fields.str("error_description"), 200),
		}
	}
	tr := &tokenResponse{
		AccessToken:  fields.str("access_token"),
		TokenType:    fields.str("token_type"),
		RefreshToken: fields.str("refresh_token"),
		Scope:        fields.str("scope"),
	}
	if tr.AccessToken == "" {
		return nil, fmt.Errorf("%s answered without an access_token", endpoint)
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return nil, fmt.Errorf("%s issued a %q token; Keyport supports only Bearer tokens", endpoint, sanitize(tr.TokenType, 32))
	}
	if exp, ok := fields["expires_in"]; ok && exp != nil {
		n, err := toSeconds(exp)
		if err != nil {
			return nil, fmt.Errorf("%s answered an invalid expires_in: %v", endpoint, err)
		}
		tr.ExpiresIn = n
	}
	return tr, nil
}

// tokenFields is a decoded token endpoint body.
type tokenFields map[string]any

// str returns a string field, "" when absent or not a string.
func (f tokenFields) str(k string) string {
	s, _ := f[k].(string)
	return s
}

func decodeTokenBody(contentType string, body []byte) (tokenFields, error) {
	media, _, _ := mime.ParseMediaType(contentType)
	if media == "application/x-www-form-urlencoded" || media == "text/plain" {
		q, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		f := tokenFields{}
		for k, v := range q {
			if len(v) > 0 {
				f[k] = v[0]
			}
		}
		return f, nil
	}
	var f tokenFields
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if f == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	return f, nil
}

// maxLifetime caps expires_in (ten years) so time arithmetic cannot overflow.
const maxLifetime = 10 * 365 * 24 * 3600

// toSeconds reads expires_in, a JSON number or (seen in the wild) a string.
func toSeconds(v any) (int64, error) {
	var n float64
	switch x := v.(type) {
	case float64:
		n = x
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", sanitize(x, 20))
		}
		n = f
	default:
		return 0, fmt.Errorf("not a number")
	}
	if n != n || n < 0 { // NaN or negative
		return 0, fmt.Errorf("%v is not a lifetime", n)
	}
	if n > maxLifetime {
		n = maxLifetime
	}
	return int64(n), nil
}

// expiryFrom turns expires_in into an absolute time; zero when unknown.
func expiryFrom(now time.Time, expiresIn int64) time.Time {
	if expiresIn <= 0 {
		return time.Time{}
	}
	return now.Add(time.Duration(expiresIn) * time.Second)
}

// revoke asks the revocation endpoint (RFC 7009) to revoke token. Best effort.
func revoke(ctx context.Context, hc *http.Client, endpoint, token, hint string, c clientInfo) error {
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	status, _, body, err := postForm(ctx, hc, endpoint, form, c)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		var te TokenError
		te.Endpoint, te.Status = endpoint, status
		var f map[string]any
		if json.Unmarshal(body, &f) == nil {
			te.Code, _ = f["error"].(string)
			te.Code = sanitize(te.Code, 64)
		}
		return &te
	}
	return nil
}

// scrubURLError drops the URL from a *url.Error (it is printed by the
// caller already, and a query could hold a code).
func scrubURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
