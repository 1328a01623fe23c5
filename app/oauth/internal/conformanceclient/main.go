// Command conformanceclient is the client the official MCP conformance
// suite drives to test Keyport's OAuth: `conformance client --suite auth
// --command <this binary>`. For each scenario it connects a go-sdk MCP
// client to the scenario's server URL (the last argument) with Keyport's
// sign-in behind go-sdk's auth.OAuthHandler hook: a 401 runs oauth.Login
// (its browser is an HTTP client that follows the authorization server's
// redirect to Keyport's loopback callback), tokens come from
// oauth.Credentials, and a 403 insufficient_scope goes through
// Credentials.StepUp. Then it lists the tools and calls "test-tool".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"

	"keyport/app/oauth"
)

// clientMetadataURL is the Client ID Metadata Document URL the conformance
// suite expects (it stands in for the one Keyport would host).
const clientMetadataURL = "https://conformance-test.local/client-metadata.json"

// maxLogins bounds the sign-ins of one run (the suite's retry limit is 3).
const maxLogins = 3

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: conformanceclient SERVER_URL")
		os.Exit(2)
	}
	serverURL := os.Args[len(os.Args)-1]
	scenario := os.Getenv("MCP_CONFORMANCE_SCENARIO")
	var confCtx map[string]any
	if raw := os.Getenv("MCP_CONFORMANCE_CONTEXT"); raw != "" {
		_ = json.Unmarshal([]byte(raw), &confCtx)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := run(ctx, log, serverURL, confCtx); err != nil {
		log.Error("scenario failed", "scenario", scenario, "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, serverURL string, confCtx map[string]any) error {
	lockDir, err := os.MkdirTemp("", "keyport-conformance-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(lockDir)
	store := oauth.NewMemoryStore()
	creds, err := oauth.NewCredentials(oauth.CredentialsConfig{
		Server: "conformance", ResourceURL: serverURL, Store: store, LockDir: lockDir, Logger: log,
	})
	if err != nil {
		return err
	}
	h := &handler{log: log, creds: creds, cfg: oauth.LoginConfig{
		Server:            "conformance",
		ResourceURL:       serverURL,
		ClientMetadataURL: clientMetadataURL,
		OpenBrowser:       browse,
		Store:             store,
		Logger:            log,
		LockDir:           lockDir,
		Timeout:           20 * time.Second,
	}}
	if id, ok := confCtx["client_id"].(string); ok {
		h.cfg.ClientID = id
		h.cfg.ClientSecret, _ = confCtx["client_secret"].(string)
	}

	client := mcp.NewClient(&mcp.Implementation{Name: "keyport-conformance", Version: "1.0.0"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: serverURL, OAuthHandler: h}, nil)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer session.Close()
	if _, err := session.ListTools(ctx, nil); err != nil {
		return fmt.Errorf("list tools: %w", err)
	}
	if _, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "test-tool", Arguments: map[string]any{}}); err != nil {
		return fmt.Errorf("call test-tool: %w", err)
	}
	return nil
}

// browse is the headless browser: it loads the authorization URL and
// follows the redirect to Keyport's loopback callback.
func browse(u string) error {
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(u)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// handler is Keyport's OAuth behind go-sdk's auth.OAuthHandler.
type handler struct {
	log    *slog.Logger
	creds  *oauth.Credentials
	cfg    oauth.LoginConfig
	logins int
}

// TokenSource hands out Keyport's current token; without a sign-in it
// yields invalid_grant so the request goes out bare and earns the 401.
func (h *handler) TokenSource(context.Context) (oauth2.TokenSource, error) {
	return tokenSource{h.creds}, nil
}

type tokenSource struct{ c *oauth.Credentials }

func (t tokenSource) Token() (*oauth2.Token, error) {
	hdr, err := t.c.Header(context.Background())
	if errors.Is(err, oauth.ErrSignInNeeded) {
		return nil, &oauth2.RetrieveError{ErrorCode: "invalid_grant"}
	}
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: strings.TrimPrefix(hdr.Get("Authorization"), "Bearer "), TokenType: "Bearer"}, nil
}

// Authorize reacts to a 401 (refresh, else sign in) or 403 (step-up).
func (h *handler) Authorize(ctx context.Context, req *http.Request, resp *http.Response) error {
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	sent := req.Header.Get("Authorization")
	if resp.StatusCode == http.StatusForbidden {
		act, err := h.creds.StepUp(ctx, resp.Header, sent)
		h.log.Info("403 from the server", "action", act)
		switch act {
		case oauth.PassThrough, oauth.Retry:
			return nil
		case oauth.GiveUp:
			return err
		}
		return h.login(ctx, resp.Header)
	}
	if sent != "" && h.creds.Rejected(ctx, sent) == nil {
		return nil
	}
	return h.login(ctx, resp.Header)
}

func (h *handler) login(ctx context.Context, challenge http.Header) error {
	if h.logins >= maxLogins {
		return fmt.Errorf("gave up after %d sign-ins", h.logins)
	}
	h.logins++
	cfg := h.cfg
	cfg.Challenge = challenge
	res, err := oauth.Login(ctx, cfg)
	if err != nil {
		return err
	}
	h.log.Info("signed in", "issuer", res.Issuer, "scopes", res.Scopes, "registration", res.Registration)
	h.creds.Reload()
	return nil
}
