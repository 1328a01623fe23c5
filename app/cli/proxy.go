package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"keyport/app"
	"keyport/app/secrets"
	"keyport/proxymgr"
	"keyport/proxymgr/peercred"
)

func newProxyCmd(e *env) *cobra.Command {
	var (
		upstream, name, auditFile string
		profile                   string
		port                      int
		allow, deny               []string
	)
	cmd := &cobra.Command{
		Use:   "proxy NAME [-p PORT] | proxy --profile NAME [-p PORT] | proxy --upstream URL [-p PORT]",
		Short: "Run a local proxy to a remote MCP server until interrupted",
		Long: `proxy serves a remote streamable-HTTP MCP server on 127.0.0.1, at
http://127.0.0.1:PORT/mcp (and /), for any MCP client: it forwards every
request, injects the server's credentials from the OS keychain, enforces its
tool policy and writes its audit log. It runs until interrupted (Ctrl-C),
then lets requests in flight finish for up to 5 seconds.

With NAME, the server comes from your catalog (servers.yaml), and an edit
of it there (its policy, its URL) applies to the running proxy without
dropping a connection. Without -p it listens on the port Keyport assigned to
the server, the one 'keyport config' writes into client entries, so those
clients connect to it. With
--upstream instead, any server URL is proxied without credentials; the tool
policy is given with --allow and --deny and the audit log with --audit.

Patterns for --allow and --deny are tool names, globs (github_*) or regular
expressions (^get_.*$); deny wins, and without --allow every tool not denied
is allowed.`,
		Example: `  keyport proxy github -p 8888
  keyport proxy --upstream https://mcp.example.com/mcp -p 8888
  keyport proxy docs --upstream http://127.0.0.1:8931/mcp --deny 'delete_*' --audit docs-audit.jsonl`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if profile != "" {
				if len(a) > 0 || upstream != "" || name != "" || len(allow)+len(deny) > 0 || auditFile != "" {
					return usage(errors.New("proxy: give --profile NAME alone (with -p PORT at most)"))
				}
				a, err := e.catalogApp()
				if err != nil {
					return err
				}
				log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
				u, stop, err := a.ServeProfile(profile, port, log)
				if err != nil {
					return err
				}
				return announce(cmd.Context(), "profile "+profile, u, cmd.OutOrStdout(), stop)
			}
			if len(a) == 1 {
				if name != "" && name != a[0] {
					return usage(fmt.Errorf("proxy: the server is named twice (%q and --name %q); give it once", a[0], name))
				}
				name = a[0]
			}
			if upstream == "" {
				if name == "" {
					return usage(errors.New("proxy: name a server of your catalog (keyport ls), or pass a URL with --upstream"))
				}
				if len(allow)+len(deny) > 0 || auditFile != "" {
					return usage(errors.New("proxy: --allow, --deny and --audit go with --upstream; a catalog server's policy and audit log are set in servers.yaml"))
				}
				a, err := e.catalogApp()
				if err != nil {
					return err
				}
				if secrets.NewPrompter(e.io.In, e.io.Err).IsTerminal() {
					// Someone watches: a server that needs a new sign-in
					// mid-session gets it in the browser.
					a.SetSignInPrompt(app.PromptBrowser, nil, 0)
				}
				log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
				u, stop, err := a.ServeProxy(name, port, log)
				if err != nil {
					return err
				}
				return announce(cmd.Context(), name, u, cmd.OutOrStdout(), stop)
			}
			if name == "" {
				u, err := url.Parse(upstream)
				if err != nil || u.Hostname() == "" {
					return usage(fmt.Errorf("proxy: --upstream %q is not an http:// or https:// URL", upstream))
				}
				name = u.Hostname()
			}
			cfg := proxymgr.Config{
				Name:     name,
				Upstream: upstream,
				Port:     port,
				Policy:   proxymgr.ToolPolicy{Allow: allow, Deny: deny},
				Audit:    proxymgr.AuditConfig{File: auditFile},
				Logger:   slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo})),
			}
			if err := cfg.Check(); err != nil {
				return usage(err)
			}
			return runProxy(cmd.Context(), cfg, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&upstream, "upstream", "", "proxy this streamable-HTTP MCP URL instead of a catalog server")
	f.StringVar(&profile, "profile", "", "serve a profile's endpoint (keyport profile) on its assigned port")
	f.IntVarP(&port, "port", "p", 0, "local port to listen on (default: the server's assigned port, which client entries use; a free port with --upstream)")
	f.StringVar(&name, "name", "", "the server's name in messages and the audit log (default: the URL's host)")
	f.StringArrayVar(&allow, "allow", nil, "allow only tools matching this pattern (repeatable)")
	f.StringArrayVar(&deny, "deny", nil, "deny tools matching this pattern (repeatable; deny wins)")
	f.StringVar(&auditFile, "audit", "", "append an audit log (JSON lines) to this file")
	return cmd
}

// runProxy runs one proxy for cfg until ctx ends (see announce).
func runProxy(ctx context.Context, cfg proxymgr.Config, out io.Writer) error {
	p, err := proxymgr.New(cfg)
	if err != nil {
		return err
	}
	if err := p.Start(ctx); err != nil {
		return err
	}
	return announce(ctx, cfg.Name, p.URL(), out, p.Shutdown)
}

// announce says on out, with exactly "Proxying connections to NAME on
// 127.0.0.1:PORT", that the proxy at endpoint serves (and, on a line of its
// own, when other users of the machine can use it), waits for ctx to end
// and stops it gracefully (in-flight requests get up to 5 s).
func announce(ctx context.Context, name, endpoint string, out io.Writer, stop func(context.Context) error) error {
	u, err := url.Parse(endpoint)
	if err == nil {
		_, err = fmt.Fprintf(out, "Proxying connections to %s on %s\n", name, u.Host)
	}
	if note := peerCheckNote(app.PeerCheck()); err == nil && note != "" {
		_, err = fmt.Fprintln(out, note)
	}
	if err != nil {
		_ = stop(context.Background())
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	return stop(sctx)
}

// peerCheckNote is the line `keyport proxy` adds on a system where the
// proxy cannot tell other OS users' programs from the user's own (package
// peercred); empty where it refuses them.
func peerCheckNote(s peercred.Support) string {
	if s.Active {
		return ""
	}
	return "Warning: other users of this machine can use this proxy: no same-user check on this system (" + s.Reason + ")"
}
