package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"keyport/app"
)

// loginOptions are the inputs of `keyport login`.
type loginOptions struct {
	Name         string
	URL          string
	NoBrowser    bool
	ClientID     string
	Scopes       []string
	CallbackPort int
	Timeout      time.Duration
}

func newLoginCmd(e *env) *cobra.Command {
	var o loginOptions
	cmd := &cobra.Command{
		Use:   "login NAME [--no-browser] | login NAME --url URL",
		Short: "Sign in to an OAuth-protected MCP server in the browser",
		Long: `Sign in to an MCP server that uses OAuth (the MCP authorization flow).

Keyport opens the browser on the server's sign-in page and waits (up to
--timeout) for it to redirect back to 127.0.0.1. The tokens go to the OS
keychain; proxies and bridges refresh them silently from then on.

The browser is the command in $BROWSER (it gets the URL as its argument, or
in place of %s), else the system's default. With --no-browser the URL is
printed for you to open.`,
		Example: `  keyport login github --url https://api.githubcopilot.com/mcp/
  keyport login --name notion --url https://mcp.notion.com/mcp --no-browser`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name, err := nameArg(o.Name, argv)
			if err != nil {
				return err
			}
			o.Name = name
			a, err := e.app()
			if err != nil {
				return err
			}
			if o.URL == "" {
				// A catalog server: its URL, client and scopes come from
				// servers.yaml.
				if a, err = e.catalogApp(); err != nil {
					return err
				}
			}
			return runLogin(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), a, o, os.Getenv)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "the server's name (or give it as the argument)")
	f.StringVar(&o.URL, "url", "", "sign in to this MCP URL instead of a catalog server's")
	f.BoolVar(&o.NoBrowser, "no-browser", false, "print the sign-in URL instead of opening a browser")
	f.StringVar(&o.ClientID, "client-id", "", "a pre-registered OAuth client ID (its secret, if any, is read from the keychain)")
	f.StringSliceVar(&o.Scopes, "scopes", nil, "scopes to request, comma-separated (default: what the server asks for)")
	f.IntVar(&o.CallbackPort, "callback-port", 0, "fixed port of the 127.0.0.1 redirect URI (default: any free port)")
	f.DurationVar(&o.Timeout, "timeout", app.DefaultLoginTimeout, "how long to wait for the browser")
	return cmd
}

func newLogoutCmd(e *env) *cobra.Command {
	var name string
	var noRevoke bool
	cmd := &cobra.Command{
		Use:   "logout [NAME]",
		Short: "Sign out of an OAuth-protected MCP server and forget its tokens",
		Long: `Remove a server's OAuth tokens and client registrations from the OS keychain,
after asking its authorization server to revoke them (when it supports that).`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			n, err := nameArg(name, argv)
			if err != nil {
				return err
			}
			a, err := e.app()
			if err != nil {
				return err
			}
			return runLogout(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), a, n, !noRevoke)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the server's name (or give it as the argument)")
	cmd.Flags().BoolVar(&noRevoke, "no-revoke", false, "only forget the tokens; do not ask the server to revoke them")
	return cmd
}

// nameArg takes the server name from the argument or --name.
func nameArg(flag string, a []string) (string, error) {
	switch {
	case len(a) == 1 && flag != "" && a[0] != flag:
		return "", usage(fmt.Errorf("two server names: %q and --name %q", a[0], flag))
	case len(a) == 1:
		return a[0], nil
	case flag != "":
		return flag, nil
	}
	return "", usage(errors.New("name the server: keyport login NAME (a server of your catalog), or keyport login NAME --url URL"))
}

// cliLogger logs warnings and errors to stderr (stdout is the command's).
func cliLogger(errOut io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// runLogin signs in to one server; the reusable body of `keyport login`.
func runLogin(ctx context.Context, out, errOut io.Writer, a *app.App, o loginOptions, getenv func(string) string) error {
	open := app.BrowserOpener(getenv)
	res, err := a.Login(ctx, app.LoginRequest{
		Name:         o.Name,
		URL:          o.URL,
		ClientID:     o.ClientID,
		Scopes:       o.Scopes,
		CallbackPort: o.CallbackPort,
		Timeout:      o.Timeout,
		Logger:       cliLogger(errOut),
		OpenBrowser: func(u string) error {
			if !o.NoBrowser {
				err := open(u)
				if err == nil {
					fmt.Fprintf(out, "Opened the browser to sign in to %s. Waiting (up to %s)...\n", o.Name, timeoutOf(o.Timeout))
					return nil
				}
				fmt.Fprintf(errOut, "keyport: could not open a browser: %v\n", err)
			}
			fmt.Fprintf(out, "Open this URL in a browser to sign in to %s (waiting up to %s):\n\n  %s\n\n", o.Name, timeoutOf(o.Timeout), u)
			return nil
		},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Signed in to %s (issuer %s", o.Name, res.Issuer)
	if len(res.Scopes) > 0 {
		fmt.Fprintf(out, "; scopes %s", strings.Join(res.Scopes, " "))
	}
	if !res.Expiry.IsZero() {
		fmt.Fprintf(out, "; token valid until %s", res.Expiry.Local().Format(time.DateTime))
	}
	if res.Refreshable {
		fmt.Fprint(out, ", refreshed automatically")
	}
	fmt.Fprintln(out, ").")
	return nil
}

func timeoutOf(d time.Duration) time.Duration {
	if d <= 0 {
		return app.DefaultLoginTimeout
	}
	return d
}

// runLogout signs out of one server; the reusable body of `keyport logout`.
func runLogout(ctx context.Context, out, errOut io.Writer, a *app.App, name string, revoke bool) error {
	res, err := a.Logout(ctx, name, revoke, cliLogger(errOut))
	if err != nil {
		return err
	}
	switch {
	case !res.WasSignedIn:
		fmt.Fprintf(out, "%s was not signed in; nothing to do.\n", name)
	case res.Revoked:
		fmt.Fprintf(out, "Signed out of %s (tokens revoked).\n", name)
	default:
		fmt.Fprintf(out, "Signed out of %s.\n", name)
	}
	return nil
}
