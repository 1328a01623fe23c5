package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"keyport/app"
)

func newConfigCmd(e *env) *cobra.Command {
	var (
		profile      string
		all          bool
		labels       string
		clientConfig string
		jsonFormat   string
	)
	cmd := &cobra.Command{
		Use:   "config [NAME...] [--all | --labels k=v] [--client-config=CLIENT|PATH]",
		Short: "Wire servers into an AI client's MCP config",
		Long: `Wire servers into an AI client's MCP config file.

Without --client-config it prints the JSON block to paste yourself. With one,
it updates that client's file: only Keyport's own entries (keyport-NAME) are
written; comments, formatting and every other entry stay as they are, and
the previous version is kept as a backup (Undo in the app).

CLIENT is one of claude (Claude Desktop; stdio only, so its entry runs
'keyport connect NAME'), cursor, claude-code, vscode, vscode-insiders,
windsurf or gemini. A PATH is written in the format its location implies
(.vscode/ uses "servers", anything else "mcpServers").

With --profile NAME it writes the profile's one entry, keyport-profile-NAME,
instead (see 'keyport profile').

Remote-capable clients get the URL of the server's persistent local proxy,
on the port Keyport assigned to the server: turn it on in the app (or run
'keyport proxy NAME', which serves that port) for them to connect. config
says whether each endpoint runs now.`,
		Example: `  keyport config github
  keyport config github --client-config=cursor
  keyport config --labels team=data --client-config=claude
  keyport config --all --client-config=.vscode/mcp.json
  keyport config --profile coding --client-config=claude-code`,
		Args: args(cobra.ArbitraryArgs),
		RunE: func(cmd *cobra.Command, names []string) error {
			want, err := parseLabels(labels)
			if err != nil {
				return usage(fmt.Errorf("--labels: %w", err))
			}
			if profile != "" {
				if len(names) > 0 || all || len(want) > 0 {
					return usage(errProfileAndNames)
				}
				return configProfile(cmd, e, profile, clientConfig, jsonFormat)
			}
			if len(names) > 0 && (all || len(want) > 0) {
				return usage(fmt.Errorf("name servers, or use --all or --labels, not both"))
			}
			if len(names) == 0 && !all && len(want) == 0 {
				return usage(fmt.Errorf("name the servers to wire, or use --all or --labels k=v"))
			}
			a, err := e.catalogApp()
			if err != nil {
				return err
			}
			servers, err := a.SelectServers(names, all, want)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if clientConfig == "" {
				block, err := a.SampleConfig(servers, jsonFormat)
				if err != nil {
					return usage(err)
				}
				if _, err = out.Write(block); err != nil {
					return err
				}
				// The block is for pasting: the endpoints' state goes to stderr.
				return printEndpoints(cmd.ErrOrStderr(), a, servers)
			}
			cwd, _ := os.Getwd()
			done, err := a.ConfigureClient(clientConfig, servers, jsonFormat, cwd)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "Updated client configuration at: %s\n", done.Path)
			restart := done.Restart
			if restart == "" {
				restart = "Restart the client (or reload its MCP servers) to pick up the change."
			}
			fmt.Fprintln(out, restart)
			if !done.Remote {
				_, err := fmt.Fprintln(out, "The client starts 'keyport connect NAME' for each entry itself: nothing else needs to run.")
				return err
			}
			return printEndpoints(out, a, servers)
		},
		ValidArgsFunction: e.completeServers,
	}
	f := cmd.Flags()
	f.BoolVar(&all, "all", false, "every server of the catalog")
	f.StringVar(&profile, "profile", "", "wire the profile's one endpoint (entry keyport-profile-NAME) instead of servers")
	f.StringVar(&labels, "labels", "", "servers with all these labels (k=v,k2=v2)")
	f.StringVar(&clientConfig, "client-config", "", "the client to update: claude, cursor, claude-code, vscode, vscode-insiders, windsurf, gemini, or a file PATH")
	f.StringVar(&jsonFormat, "json-format", "auto", "layout of the entries: pretty, compact, or auto (match the file)")
	return cmd
}

// printEndpoints says, per server, whether the local endpoint its client
// entries point at is running now, and how to start it when it is not.
func printEndpoints(w io.Writer, a *app.App, servers []string) error {
	for _, name := range servers {
		e, err := a.Endpoint(name)
		if err != nil {
			return err
		}
		if e.Running {
			fmt.Fprintf(w, "%s: %s is running.\n", name, e.URL)
			continue
		}
		fmt.Fprintf(w, "%s: %s is not running: turn %s on in the Keyport app, or run 'keyport proxy %s'.\n", name, e.URL, name, name)
	}
	return nil
}

// configProfile is config --profile NAME.
func configProfile(cmd *cobra.Command, e *env, name, clientConfig, jsonFormat string) error {
	a, err := e.catalogApp()
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if clientConfig == "" {
		block, err := a.SampleProfileConfig(name, jsonFormat)
		if err != nil {
			return err
		}
		if _, err := out.Write(block); err != nil {
			return err
		}
		return printProfileEndpoint(cmd.ErrOrStderr(), a, name)
	}
	cwd, _ := os.Getwd()
	done, err := a.ConfigureProfileClient(clientConfig, name, jsonFormat, cwd)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Updated client configuration at: %s\n", done.Path)
	restart := done.Restart
	if restart == "" {
		restart = "Restart the client (or reload its MCP servers) to pick up the change."
	}
	fmt.Fprintln(out, restart)
	if !done.Remote {
		_, err := fmt.Fprintf(out, "The client starts 'keyport connect --profile %s' itself: nothing else needs to run.\n", name)
		return err
	}
	return printProfileEndpoint(out, a, name)
}

// printProfileEndpoint says whether a profile's endpoint runs and how to
// start it.
func printProfileEndpoint(w io.Writer, a *app.App, name string) error {
	e, err := a.ProfileEndpoint(name)
	if err != nil {
		return err
	}
	if e.Running {
		_, err = fmt.Fprintf(w, "profile %s: %s is running.\n", name, e.URL)
		return err
	}
	_, err = fmt.Fprintf(w, "profile %s: %s is not running: turn the profile on in the Keyport app, or run 'keyport proxy --profile %s'.\n", name, e.URL, name)
	return err
}
