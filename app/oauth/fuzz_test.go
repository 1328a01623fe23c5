package oauth

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// FuzzParseChallenge: any WWW-Authenticate value parses or errors, never
// panics, and what Keyport keeps from it is printable and bounded.
func FuzzParseChallenge(f *testing.F) {
	for _, s := range []string{
		`Bearer resource_metadata="https://x/.well-known/oauth-protected-resource", scope="a b"`,
		`Bearer error="insufficient_scope", scope="files:read", error_description="need \"more\""`,
		`Basic realm="x", Bearer scope=s`,
		`Bearer`, `"`, `Bearer a=`, `Bearer a="\`, `, ,`, `Bearer x="a,b", y=c`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{}
		h.Add("WWW-Authenticate", v)
		c, err := ParseChallenge(h)
		if err != nil {
			return
		}
		for _, s := range []string{c.Error, c.ErrorDescription} {
			if !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\r\n\x1b") {
				t.Fatalf("unsanitized %q", s)
			}
		}
		if utf8.RuneCountInString(c.ErrorDescription) > 201 {
			t.Fatalf("description not bounded: %d runes", utf8.RuneCountInString(c.ErrorDescription))
		}
		for _, s := range c.Scopes {
			if s == "" || strings.ContainsAny(s, " \t") {
				t.Fatalf("bad scope %q", s)
			}
		}
	})
}

// FuzzParseTokenResponse: a token endpoint body never panics the parser,
// a success always has an access token and a sane lifetime, and an error
// never quotes the access token it might contain.
func FuzzParseTokenResponse(f *testing.F) {
	f.Add(200, "application/json", `{"access_token":"TOK","expires_in":3600,"refresh_token":"R"}`)
	f.Add(200, "application/json", `{"access_token":"TOK","expires_in":"12"}`)
	f.Add(400, "application/json", `{"error":"invalid_grant","error_description":"x"}`)
	f.Add(200, "application/x-www-form-urlencoded", `access_token=TOK&expires_in=5`)
	f.Add(200, "text/plain", `access_token=TOK&token_type=mac`)
	f.Add(500, "", ``)
	f.Fuzz(func(t *testing.T, status int, ctype, body string) {
		tr, err := parseTokenResponse("https://as/token", status, ctype, []byte(body))
		if err != nil {
			if strings.Contains(body, "TOKSECRET") && strings.Contains(err.Error(), "TOKSECRET") {
				t.Fatalf("error quotes the body: %v", err)
			}
			return
		}
		if tr.AccessToken == "" || tr.ExpiresIn < 0 || tr.ExpiresIn > maxLifetime {
			t.Fatalf("accepted %+v", tr)
		}
	})
}

// FuzzResourceCovers: never panics; a URL always covers itself; a resource
// on another host never covers the server.
func FuzzResourceCovers(f *testing.F) {
	f.Add("https://mcp.example.com/mcp", "https://mcp.example.com/mcp/sub")
	f.Add("https://MCP.example.com:443/", "https://mcp.example.com")
	f.Add("http://[::1]:80/a", "http://[::1]/a/b")
	f.Add("https://a/%2F", "https://a//")
	f.Fuzz(func(t *testing.T, resource, server string) {
		got := resourceCovers(resource, server)
		u, err := url.Parse(server)
		if err == nil && u.Scheme != "" && u.Host != "" && u.Fragment == "" && u.User == nil && !resourceCovers(server, server) {
			t.Fatalf("%q does not cover itself", server)
		}
		r, err := url.Parse(resource)
		if got && err == nil && u != nil && canonicalHost(r) != canonicalHost(u) {
			t.Fatalf("%q covers %q on another host", resource, server)
		}
	})
}

// FuzzResourceMetadata: any metadata document decodes and validates
// without panicking; an accepted one names a covering resource and
// https-or-loopback authorization servers.
func FuzzResourceMetadata(f *testing.F) {
	f.Add(`{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://as.example.com"]}`)
	f.Add(`{"resource":"https://mcp.example.com","authorization_servers":["http://127.0.0.1:9/"],"scopes_supported":["a"]}`)
	f.Add(`{"resource":"https://evil.example.com/mcp","authorization_servers":["javascript:alert(1)"]}`)
	f.Add(`{"resource":1}`)
	f.Add(`{} {}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var prm oauthex.ProtectedResourceMetadata
		if err := decodeStrict([]byte(doc), &prm); err != nil {
			return
		}
		const server = "https://mcp.example.com/mcp"
		if err := checkResourceMetadata(&prm, "demo", server, "https://mcp.example.com/prm"); err != nil {
			return
		}
		if !resourceCovers(prm.Resource, server) || len(prm.AuthorizationServers) == 0 {
			t.Fatalf("accepted %+v", prm)
		}
		for _, as := range prm.AuthorizationServers {
			if checkHTTPSOrLoopback(as) != nil {
				t.Fatalf("accepted authorization server %q", as)
			}
		}
	})
}

// FuzzAuthServerMeta: authorization server metadata validation never
// panics and never accepts metadata without S256 or for another issuer.
func FuzzAuthServerMeta(f *testing.F) {
	f.Add(`{"issuer":"https://as.example","authorization_endpoint":"https://as.example/a","token_endpoint":"https://as.example/t","code_challenge_methods_supported":["S256"]}`)
	f.Add(`{"issuer":"https://as.example/","authorization_endpoint":"javascript:x","token_endpoint":"https://as.example/t","code_challenge_methods_supported":["plain"]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var asm oauthex.AuthServerMeta
		if err := decodeStrict([]byte(doc), &asm); err != nil {
			return
		}
		const issuer = "https://as.example"
		if err := checkAuthServerMeta(&asm, "demo", issuer); err != nil {
			return
		}
		if strings.TrimSuffix(asm.Issuer, "/") != issuer || checkHTTPSOrLoopback(asm.TokenEndpoint) != nil ||
			checkHTTPSOrLoopback(asm.AuthorizationEndpoint) != nil {
			t.Fatalf("accepted %+v", asm)
		}
	})
}
