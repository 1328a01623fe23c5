package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"keyport/app"
	"keyport/app/secrets"
)

// serverRow is one server in `keyport ls --format json|yaml`. Its field
// names are a stable interface for scripts: add fields, never rename them.
type serverRow struct {
	Name          string            `json:"name" yaml:"name"`
	Description   string            `json:"description" yaml:"description"`
	Type          string            `json:"type" yaml:"type"`
	Labels        map[string]string `json:"labels" yaml:"labels"`
	Proxy         string            `json:"proxy" yaml:"proxy"` // local URL, or "" when no proxy runs
	ProxyState    string            `json:"proxy_state" yaml:"proxy_state"`
	Enabled       bool              `json:"enabled" yaml:"enabled"`
	Allow         []string          `json:"allow" yaml:"allow"`
	Deny          []string          `json:"deny" yaml:"deny"`
	NoToolAllowed bool              `json:"no_tool_allowed" yaml:"no_tool_allowed"`
	CredentialSet bool              `json:"credential_set" yaml:"credential_set"`
	// OAuthClient is how Keyport identifies itself to an OAuth server:
	// "pre-registered client", "client metadata URL" or "dynamic registration".
	OAuthClient string `json:"oauth_client,omitempty" yaml:"oauth_client,omitempty"`
	Demo        bool   `json:"demo,omitempty" yaml:"demo,omitempty"`
	// Managed: the organization's managed settings define the server
	// (read-only). ManagedDeny and ManagedPinning are what they force on it.
	Managed        bool     `json:"managed" yaml:"managed"`
	ManagedDeny    []string `json:"managed_deny" yaml:"managed_deny"`
	ManagedPinning string   `json:"managed_pinning,omitempty" yaml:"managed_pinning,omitempty"`
}

func newLsCmd(e *env) *cobra.Command {
	var format, labels, search string
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the MCP servers you can reach",
		Long: `List the MCP servers in your catalog (servers.yaml) with their local proxy.

Columns: Name, Description, Type (how Keyport authenticates: none, bearer,
headers or oauth, with how Keyport is known to an OAuth server: pre-registered
client, client metadata URL or dynamic registration), Labels, Proxy (the local URL when its proxy runs, else -)
and Allowed Tools (the tool policy; [!] marks a server whose policy allows no
tool at all). Profiles follow the servers (keyport profile ls).`,
		Example: `  keyport ls
  keyport ls --labels env=prod,team=data
  keyport ls --search github --format json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			want, err := parseLabels(labels)
			if err != nil {
				return usage(fmt.Errorf("--labels: %w", err))
			}
			switch format {
			case "text", "json", "yaml":
			default:
				return usage(fmt.Errorf("--format %q: use text, json or yaml", format))
			}
			a, err := e.catalogApp()
			if err != nil {
				return err
			}
			var rows []serverRow
			for _, v := range a.Servers() {
				if !matches(v, want, search) {
					continue
				}
				rows = append(rows, toRow(a, v))
			}
			if err := printServers(cmd.OutOrStdout(), format, rows); err != nil {
				return err
			}
			// Profiles follow in the table (--format json and yaml keep
			// their list of servers: 'keyport profile ls --format json').
			if profiles := a.Profiles(); format == "text" && len(profiles) > 0 && labels == "" && search == "" {
				var prows []profileRow
				for _, v := range profiles {
					prows = append(prows, toProfileRow(v))
				}
				fmt.Fprintln(cmd.OutOrStdout())
				return printProfiles(cmd.OutOrStdout(), prows)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, json or yaml")
	cmd.Flags().StringVar(&labels, "labels", "", "only servers with all these labels (k=v,k2=v2)")
	cmd.Flags().StringVar(&search, "search", "", "only servers whose name, description or labels contain TEXT")
	return cmd
}

func toRow(a *app.App, v app.ServerView) serverRow {
	r := serverRow{
		Name: v.Name, Description: v.Description, Type: v.AuthType, Labels: v.Labels,
		ProxyState: string(v.State), Enabled: v.Enabled,
		Allow: v.Allow, Deny: v.Deny, NoToolAllowed: a.AllowsNoTool(v),
		CredentialSet: !v.Credential.Needed || v.Credential.Set, Demo: v.Demo,
		OAuthClient: v.Credential.OAuthClient,
		Managed:     v.Managed, ManagedDeny: v.ManagedDeny, ManagedPinning: v.ManagedPinning,
	}
	if r.ManagedDeny == nil {
		r.ManagedDeny = []string{}
	}
	if r.Type == "" {
		r.Type = "none"
	}
	if v.State == app.ProxyRunning || v.State == app.ProxyUnreachable {
		r.Proxy = v.LocalURL
	}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	if r.Allow == nil {
		r.Allow = []string{}
	}
	if r.Deny == nil {
		r.Deny = []string{}
	}
	return r
}

func printServers(w io.Writer, format string, rows []serverRow) error {
	if rows == nil {
		rows = []serverRow{}
	}
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "yaml":
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(rows); err != nil {
			return err
		}
		return enc.Close()
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "No servers. Add one with 'keyport add NAME URL', or import one with 'keyport registry search TEXT'.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Name\tDescription\tType\tLabels\tProxy\tAllowed Tools")
	fmt.Fprintln(tw, "----\t-----------\t----\t------\t-----\t-------------")
	warn, org := false, false
	for _, r := range rows {
		proxy := r.Proxy
		if proxy == "" {
			proxy = "-"
		}
		tools := toolsSummary(r.Allow, r.Deny)
		if r.NoToolAllowed {
			tools = "[!] " + tools
			warn = true
		}
		name := r.Name
		if r.Managed || len(r.ManagedDeny) > 0 || r.ManagedPinning != "" {
			name += " (org)"
			org = true
		}
		typ := r.Type
		if r.OAuthClient != "" {
			typ += " (" + r.OAuthClient + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, oneLine(r.Description, 48), typ,
			formatLabels(r.Labels), proxy, tools)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if org {
		fmt.Fprintln(w, "\n(org): set by your organization (managed settings); those values cannot be changed here.")
	}
	if warn {
		_, err := fmt.Fprintln(w, "\n[!] The tool policy of this server allows no tool: edit tools.allow/deny in servers.yaml or in Keyport's Tools tab.")
		return err
	}
	return nil
}

// toolsSummary renders a tool policy in one cell: "*" for everything,
// "[a, b*]" for an allow list, "* except [c]" with a deny list.
func toolsSummary(allow, deny []string) string {
	s := "*"
	if len(allow) > 0 {
		s = "[" + strings.Join(allow, ", ") + "]"
	}
	if len(deny) > 0 {
		s += " except [" + strings.Join(deny, ", ") + "]"
	}
	return s
}

func formatLabels(l map[string]string) string {
	keys := slices.Sorted(maps.Keys(l))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	if s == "" {
		return "-"
	}
	return s
}

// parseLabels parses "k=v,k2=v2".
func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// matches reports whether a server has every wanted label and contains the
// search text (case-insensitive) in its name, description or labels.
func matches(v app.ServerView, labels map[string]string, search string) bool {
	for k, want := range labels {
		if got, ok := v.Labels[k]; !ok || got != want {
			return false
		}
	}
	if search == "" {
		return true
	}
	q := strings.ToLower(search)
	hay := []string{v.Name, v.Description}
	for k, val := range v.Labels {
		hay = append(hay, k+"="+val)
	}
	for _, h := range hay {
		if strings.Contains(strings.ToLower(h), q) {
			return true
		}
	}
	return false
}

func newAddCmd(e *env) *cobra.Command {
	var n app.NewServer
	var labels, headers, secretHeaders []string
	var bearer, oauthFlag, clientSecret bool
	cmd := &cobra.Command{
		Use:   "add NAME URL",
		Short: "Add a remote MCP server to your catalog",
		Long: `Add a streamable-HTTP MCP server to servers.yaml.

Secrets never come from the command line, where other programs can read
them: with --bearer, --secret-header or --client-secret, Keyport asks for
each value with a prompt that does not echo, or reads one value per line
from stdin when it is not a terminal. Values go to the OS keychain only.

An OAuth server (--oauth) is signed in to with keyport login NAME. Keyport
identifies itself to its authorization server in one of three ways: a
client you registered there yourself (--client-id, and --client-secret for
a confidential client: GitHub, Entra ID, Okta...), a Client ID Metadata
Document your organization hosts (--client-metadata-url, or the default
oauth.client_metadata_url in servers.yaml), or else dynamic registration.`,
		Example: `  keyport add github https://api.githubcopilot.com/mcp/ --oauth --client-id Iv1.0123456789abcdef --client-secret
  keyport add acme https://mcp.acme.example/mcp --secret-header X-API-Key --label team=data
  printf '%s\n' "$TOKEN" | keyport add ci https://mcp.example.com/mcp --bearer
  keyport add notion https://mcp.notion.com/mcp --oauth`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			n.Name, n.URL = argv[0], argv[1]
			var err error
			if n.Labels, err = parsePairs(labels, "="); err != nil {
				return usage(fmt.Errorf("--label: %w", err))
			}
			if n.Headers, err = parsePairs(headers, ":"); err != nil {
				return usage(fmt.Errorf("--header: %w", err))
			}
			kinds := 0
			for _, on := range []bool{bearer, len(secretHeaders) > 0, oauthFlag} {
				if on {
					kinds++
				}
			}
			if kinds > 1 {
				return usage(errors.New("use one of --bearer, --secret-header and --oauth"))
			}
			if !oauthFlag && (n.ClientID != "" || clientSecret || n.ClientMetadataURL != "" || n.CallbackPort != 0) {
				return usage(errors.New("--client-id, --client-secret, --client-metadata-url and --callback-port go with --oauth"))
			}
			if clientSecret && n.ClientID == "" {
				return usage(errors.New("--client-secret needs --client-id: a client secret belongs to a pre-registered client"))
			}
			n.AuthType = "none"
			n.Secrets = map[string]string{}
			p := secrets.NewPrompter(e.io.In, e.io.Err)
			switch {
			case bearer:
				n.AuthType = "bearer"
				if n.Secrets[secrets.KindBearer], err = p.Read(fmt.Sprintf("Bearer token for %s", n.Name)); err != nil {
					return err
				}
			case len(secretHeaders) > 0:
				n.AuthType = "headers"
				for _, h := range secretHeaders {
					if n.Secrets[secrets.HeaderKind(h)], err = p.Read(fmt.Sprintf("Value of %s for %s", h, n.Name)); err != nil {
						return err
					}
				}
			case oauthFlag:
				n.AuthType = "oauth"
				if clientSecret {
					if n.Secrets[app.KindClientSecret], err = p.Read(fmt.Sprintf("Client secret of %s's OAuth client %s", n.Name, n.ClientID)); err != nil {
						return err
					}
				}
			}
			a, err := e.app()
			if err != nil {
				return err
			}
			if err := a.AddServer(n); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added %s to %s\n", n.Name, a.ServersFile())
			switch {
			case oauthFlag:
				fmt.Fprintf(cmd.OutOrStdout(), "Sign in with: keyport login %s\n", n.Name)
			case bearer || len(secretHeaders) > 0:
				fmt.Fprintln(cmd.OutOrStdout(), "Its credentials are in the OS keychain.")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Run it with: keyport proxy %s\n", n.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&n.Description, "description", "", "what the server offers")
	f.StringArrayVar(&labels, "label", nil, "a label k=v (repeatable)")
	f.StringArrayVar(&headers, "header", nil, "a non-secret header K:V sent upstream (repeatable)")
	f.StringArrayVar(&secretHeaders, "secret-header", nil, "a header NAME whose value is secret; asked for, kept in the keychain (repeatable)")
	f.BoolVar(&bearer, "bearer", false, "the server takes a bearer token; asked for, kept in the keychain")
	f.BoolVar(&oauthFlag, "oauth", false, "the server uses OAuth sign-in (keyport login NAME)")
	f.StringVar(&n.ClientID, "client-id", "", "with --oauth: the ID of an OAuth client registered for Keyport at the server's authorization server")
	f.BoolVar(&clientSecret, "client-secret", false, "with --client-id: the client has a secret; asked for, kept in the keychain")
	f.StringVar(&n.ClientMetadataURL, "client-metadata-url", "", "with --oauth: the https URL of Keyport's Client ID Metadata Document (keyport oauth client-metadata)")
	f.IntVar(&n.CallbackPort, "callback-port", 0, "with --oauth: the fixed port of the 127.0.0.1 redirect URI the client was registered with")
	return cmd
}

// parsePairs parses "k=v" (sep "=") or "K: V" (sep ":") items.
func parsePairs(items []string, sep string) (map[string]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, it := range items {
		k, v, ok := strings.Cut(it, sep)
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not of the form KEY%sVALUE", it, sep)
		}
		out[k] = v
	}
	return out, nil
}

func newRmCmd(e *env) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a server, its keychain items and its client entries",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			a, err := e.catalogApp()
			if err != nil {
				return err
			}
			if _, err := a.Server(name); err != nil {
				return err
			}
			if !yes {
				if !secrets.NewPrompter(e.io.In, e.io.Err).IsTerminal() {
					return usage(fmt.Errorf("removing %s needs confirmation: run with --yes", name))
				}
				fmt.Fprintf(e.io.Err, "Remove %s, its credentials in the keychain and its entries in your clients' configs? [y/N] ", name)
				var answer string
				fmt.Fscanln(e.io.In, &answer)
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return errors.New("not removed")
				}
			}
			if err := a.RemoveServer(name); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed %s\n", name)
			return nil
		},
		ValidArgsFunction: e.completeServers,
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func newSecretCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Set or remove a server's credentials in the OS keychain",
		Args:  args(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	kindHelp := `KIND is "bearer" or "header/NAME" (one of the server's secret_headers), or
"client-secret" for an OAuth server's pre-registered client (auth.client_id);
it may be left out when the server has only one secret.`
	set := &cobra.Command{
		Use:   "set NAME [KIND]",
		Short: "Store a server's credential (asked for without echo, or read from stdin)",
		Long:  "Store a server's credential in the OS keychain.\n\n" + kindHelp,
		Args:  args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			a, err := e.catalogApp()
			if err != nil {
				return err
			}
			kind, err := secretKind(a, argv)
			if err != nil {
				return err
			}
			v, err := secrets.NewPrompter(e.io.In, e.io.Err).Read(fmt.Sprintf("%s for %s", kind, argv[0]))
			if err != nil {
				return err
			}
			if err := a.SetSecret(argv[0], kind, v); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Stored %s's %s in the OS keychain\n", argv[0], kind)
			return nil
		},
		ValidArgsFunction: e.completeServers,
	}
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove every credential of a server from the OS keychain (an OAuth server's client secret; sign out with keyport logout)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			a, err := e.catalogApp()
			if err != nil {
				return err
			}
			if err := a.ClearSecrets(argv[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed %s's credentials from the OS keychain\n", argv[0])
			return nil
		},
		ValidArgsFunction: e.completeServers,
	}
	cmd.AddCommand(set, rm)
	return cmd
}

// secretKind picks the KIND argument, or the server's only secret kind.
func secretKind(a *app.App, argv []string) (string, error) {
	kinds, err := a.SecretKinds(argv[0])
	if err != nil {
		return "", err
	}
	if len(argv) == 2 {
		k := argv[1]
		// Accept a bare header name for convenience.
		if k != secrets.KindBearer && k != app.KindClientSecret && !strings.HasPrefix(k, "header/") {
			k = secrets.HeaderKind(k)
		}
		return k, nil
	}
	switch len(kinds) {
	case 0:
		return "", fmt.Errorf("server %s needs no secret (see auth.type in servers.yaml)", argv[0])
	case 1:
		return kinds[0], nil
	}
	sort.Strings(kinds)
	return "", usage(fmt.Errorf("server %s has several secrets; name one: %s", argv[0], strings.Join(kinds, ", ")))
}

// completeServers completes server names for shell completion.
func (e *env) completeServers(_ *cobra.Command, argv []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(argv) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	a, err := e.app()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var names []string
	for _, v := range a.Servers() {
		names = append(names, v.Name+"\t"+oneLine(v.Description, 40))
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
