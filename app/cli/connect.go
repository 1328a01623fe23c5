package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"keyport/app"
	"keyport/proxymgr/bridge"
)

// appTarget is where a named connect sends its traffic.
type appTarget = app.BridgeTarget

func newConnectCmd(e *env) *cobra.Command {
	var (
		endpoint    string
		profile     string
		headers     []string
		noReconnect bool
		logFile     string
		verbose     bool
	)
	cmd := &cobra.Command{
		Use:   "connect NAME | connect --profile NAME | connect --url URL",
		Short: "Bridge a stdio MCP client to a remote streamable-HTTP MCP server",
		Long: `connect speaks MCP on its standard input and output, for clients that can only
start stdio servers (Claude Desktop), and forwards every message to a remote
streamable-HTTP MCP server.

With NAME, the server comes from your catalog: when the Keyport app runs that
server's proxy, connect goes through it (one tool policy, one audit log, one
credential refresh); otherwise connect runs the same proxy itself, with the
server's credentials from the OS keychain. With --url, any endpoint is
bridged as is.

It survives server restarts and network drops (it reconnects, replays the
session's initialization, and answers requests that cannot complete with an
error that says what to do), and ends the server session when the client
closes its input. Logs go to standard error or --log-file, never to standard
output.

To keep a secret out of the command line, write it as ${VAR} in a --header
value: connect reads VAR from its environment.`,
		Example: `  keyport connect github
  keyport connect --url https://mcp.example.com/mcp
  keyport connect docs --url http://127.0.0.1:8931/mcp --header 'Authorization: Bearer ${DOCS_TOKEN}'`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			h, err := parseHeaders(headers, os.Getenv)
			if err != nil {
				return usage(err)
			}
			if endpoint != "" {
				if err := checkEndpoint(endpoint); err != nil {
					return usage(err)
				}
			} else if len(a) == 0 && profile == "" {
				return usage(errors.New("connect: name a server of your catalog (keyport ls), or pass an endpoint with --url (or a profile with --profile NAME)"))
			}
			if profile != "" && (len(a) > 0 || endpoint != "") {
				return usage(errors.New("connect: give --profile NAME alone (not with a server name or --url)"))
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log, closeLog, err := openConnectLog(cmd.ErrOrStderr(), logFile, level)
			if err != nil {
				return err
			}
			defer closeLog()
			cfg := bridge.Config{
				AutoReconnect: !noReconnect,
				Header:        func(context.Context) (http.Header, error) { return h.Clone(), nil },
				Logger:        log,
			}
			if len(a) == 1 {
				cfg.Name = a[0]
			}
			if profile != "" {
				cfg.Name = "profile " + profile
			}
			if endpoint != "" {
				cfg.URL = endpoint
			} else {
				core, err := e.catalogApp()
				if err != nil {
					return err
				}
				// A server that needs a new sign-in mid-session gets it in
				// the browser, as mcp-remote does (at most once a minute).
				core.SetSignInPrompt(app.PromptBrowser, nil, 0)
				var target appTarget
				if profile != "" {
					target, err = core.ProfileBridgeTarget(profile, log)
				} else {
					target, err = core.BridgeTarget(a[0], log)
				}
				if err != nil {
					return err
				}
				defer func() {
					ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 6*time.Second)
					defer cancel()
					_ = target.Close(ctx)
				}()
				cfg.URL = target.URL
				client := bridge.NewHTTPClient()
				client.Transport = target.Transport(client.Transport)
				cfg.HTTPClient = client
			}
			return connectStdio(cmd.Context(), IO{In: cmd.InOrStdin(), Out: cmd.OutOrStdout()}, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&endpoint, "url", "", "the server's streamable-HTTP MCP endpoint (http:// or https://)")
	f.StringVar(&profile, "profile", "", "bridge to a profile's endpoint (keyport profile) instead of one server")
	f.StringArrayVar(&headers, "header", nil, "add an HTTP header to every request, as 'Name: value' (repeatable; ${VAR} reads the environment)")
	f.BoolVar(&noReconnect, "no-auto-reconnect", false, "once connected, do not reconnect after the connection is lost: requests fail instead")
	f.StringVar(&logFile, "log-file", "", "append logs to this file instead of standard error")
	f.BoolVarP(&verbose, "verbose", "v", false, "log debug details")
	return cmd
}

// openConnectLog is connect's logger: text on errOut, or appended to
// logFile when set (never standard output, which carries the MCP stream).
func openConnectLog(errOut io.Writer, logFile string, level slog.Level) (*slog.Logger, func(), error) {
	out, closeLog := errOut, func() {}
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("connect: open the log file: %w", err)
		}
		out, closeLog = f, func() { f.Close() }
	}
	if out == nil {
		out = io.Discard
	}
	return slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level})), closeLog, nil
}

// connectStdio runs the stdio bridge cfg describes on stdio (cfg's In and
// Out are filled from it). It returns nil when the client closes the
// stream or ctx is cancelled (the normal ways a client stops a stdio
// server).
func connectStdio(ctx context.Context, stdio IO, cfg bridge.Config) error {
	cfg.In, cfg.Out = stdio.In, stdio.Out
	// A client that goes away closes the pipe: writes must then fail with
	// EPIPE (so the bridge ends its session) instead of killing the process.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	err := bridge.Run(ctx, cfg)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// checkEndpoint rejects endpoints that are not absolute http(s) URLs.
func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("connect: --url must be an absolute http:// or https:// URL, like https://mcp.example.com/mcp")
	}
	return nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// parseHeaders parses 'Name: value' flags, expanding ${VAR} in values with
// getenv.
func parseHeaders(flags []string, getenv func(string) string) (http.Header, error) {
	h := http.Header{}
	for _, kv := range flags {
		name, value, ok := strings.Cut(kv, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || strings.ContainsFunc(name, func(r rune) bool { return !isTokenChar(r) }) {
			return nil, fmt.Errorf("connect: --header %q: write it as 'Name: value' with a valid header name", name)
		}
		var missing []string
		value = envRef.ReplaceAllStringFunc(value, func(ref string) string {
			v := getenv(ref[2 : len(ref)-1])
			if v == "" {
				missing = append(missing, ref)
			}
			return v
		})
		if len(missing) > 0 {
			return nil, fmt.Errorf("connect: --header %s: the environment variable %s is not set", name, strings.Join(missing, ", "))
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return nil, fmt.Errorf("connect: --header %s: the value contains a line break", name)
		}
		h.Add(name, value)
	}
	return h, nil
}

func isTokenChar(r rune) bool {
	return r < 0x7f && r > 0x20 && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
}
