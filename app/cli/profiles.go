package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"keyport/app"
)

// profileRow is one profile in `keyport profile ls --format json`; a
// stable interface for scripts (fields are added, never renamed).
type profileRow struct {
	Name        string             `json:"name"`
	Description string             `json:"description"`
	Prefix      string             `json:"prefix"` // auto or always
	Servers     []profileServerRow `json:"servers"`
	Endpoint    string             `json:"endpoint"` // local URL while it runs, else ""
	State       string             `json:"state"`
	Enabled     bool               `json:"enabled"`
	Port        int                `json:"port,omitempty"`
}

type profileServerRow struct {
	Server    string                        `json:"server"`
	Tools     []string                      `json:"tools"` // [] means every tool its policy allows
	Overrides map[string]profileOverrideRow `json:"overrides,omitempty"`
	// While the endpoint runs: Member is "up", "down" or "idle" (no client
	// has used the endpoint yet, so the server was not tried); Up is set
	// only once it was tried; Error says why it is down.
	Member string `json:"member,omitempty"`
	Up     *bool  `json:"up,omitempty"`
	Error  string `json:"error,omitempty"`
}

type profileOverrideRow struct {
	Rename      string `json:"rename,omitempty"`
	Description string `json:"description,omitempty"`
}

func toProfileRow(v app.ProfileView) profileRow {
	r := profileRow{Name: v.Name, Description: v.Description, Prefix: "auto", State: string(v.State), Enabled: v.Enabled, Port: v.Port}
	if v.PrefixAlways {
		r.Prefix = "always"
	}
	if v.State == app.ProxyRunning {
		r.Endpoint = v.LocalURL
	}
	for _, s := range v.Servers {
		sr := profileServerRow{Server: s.Server, Tools: s.Tools}
		if sr.Tools == nil {
			sr.Tools = []string{}
		}
		for tool, o := range s.Overrides {
			if sr.Overrides == nil {
				sr.Overrides = map[string]profileOverrideRow{}
			}
			sr.Overrides[tool] = profileOverrideRow{Rename: o.Rename, Description: o.Description}
		}
		for _, m := range v.Members {
			if m.Server != s.Server {
				continue
			}
			switch {
			case m.Idle:
				sr.Member = "idle"
			case m.Up:
				sr.Member, sr.Up = "up", &m.Up
			default:
				sr.Member, sr.Up, sr.Error = "down", &m.Up, m.Error
			}
		}
		r.Servers = append(r.Servers, sr)
	}
	return r
}

func newProfileCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "Serve a chosen set of servers and tools on one local endpoint",
		Long: `A profile is a named set of servers, each optionally narrowed to some of its
tools, that AI clients reach on one local endpoint (keyport-profile-NAME in
their configs) instead of one entry per server. Each server is still reached
through its own Keyport proxy: its credentials, tool policy and audit log
apply as always.

Profiles live in servers.yaml (profiles:), where tools can also be renamed
and their descriptions replaced; 'keyport profile add' writes the simple
ones. Turn a profile on in the app, or run 'keyport proxy --profile NAME';
stdio-only clients use 'keyport connect --profile NAME'.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newProfileLsCmd(e), newProfileAddCmd(e), newProfileRmCmd(e))
	return cmd
}

func newProfileLsCmd(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the profiles",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return usage(fmt.Errorf("--format %q: use text or json", format))
			}
			a, err := e.catalogApp()
			if err != nil {
				return err
			}
			rows := []profileRow{}
			for _, v := range a.Profiles() {
				rows = append(rows, toProfileRow(v))
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			if len(rows) == 0 {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), "No profiles. Add one with 'keyport profile add NAME SERVER[=TOOL,TOOL...]...'.")
				return err
			}
			return printProfiles(cmd.OutOrStdout(), rows)
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

// printProfiles writes the profiles table.
func printProfiles(w io.Writer, rows []profileRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Profile\tDescription\tServers (tools)\tEndpoint")
	fmt.Fprintln(tw, "-------\t-----------\t---------------\t--------")
	for _, r := range rows {
		var parts []string
		for _, s := range r.Servers {
			p := s.Server
			if len(s.Tools) > 0 {
				p += "=" + strings.Join(s.Tools, ",")
			}
			if s.Member == "down" {
				p += " (down)"
			}
			if len(s.Overrides) > 0 {
				p += fmt.Sprintf(" (%d override%s)", len(s.Overrides), map[bool]string{true: "", false: "s"}[len(s.Overrides) == 1])
			}
			parts = append(parts, p)
		}
		endpoint := r.Endpoint
		if endpoint == "" {
			endpoint = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, oneLine(r.Description, 40), strings.Join(parts, " "), endpoint)
	}
	return tw.Flush()
}

func newProfileAddCmd(e *env) *cobra.Command {
	var description string
	var always bool
	cmd := &cobra.Command{
		Use:   "add NAME SERVER[=TOOL,TOOL...]...",
		Short: "Add a profile to servers.yaml",
		Long: `add writes a profile into servers.yaml: NAME, then its servers in order. A
server alone serves every tool its tool policy allows; SERVER=TOOL,TOOL serves
only those (each must be allowed by the server's policy).

Tool names are kept unless two servers share one: those are prefixed with
their server's name (github_search); --prefix-always prefixes every name.
Renames and description overrides are edited in servers.yaml or the app.`,
		Example: `  keyport profile add coding github=list_issues,get_issue,create_pull_request sentry local-tools
  keyport profile add research linear warehouse=query,describe --description "read-only research"`,
		Args: args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			p := app.NewProfile{Name: argv[0], Description: description, PrefixAlways: always}
			for _, spec := range argv[1:] {
				s, err := parseProfileServer(spec)
				if err != nil {
					return usage(err)
				}
				p.Servers = append(p.Servers, s)
			}
			a, err := e.catalogApp()
			if err != nil {
				return err
			}
			if err := a.SetProfile(p, true); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added profile %s to %s\n", p.Name, a.ServersFile())
			fmt.Fprintf(cmd.OutOrStdout(), "Wire it into a client with 'keyport config --profile %s --client-config=CLIENT'.\n", p.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "what the profile is for")
	cmd.Flags().BoolVar(&always, "prefix-always", false, "prefix every tool name with its server's name, not only colliding ones")
	return cmd
}

// parseProfileServer parses SERVER or SERVER=TOOL,TOOL.
func parseProfileServer(spec string) (app.ProfileServer, error) {
	server, tools, hasTools := strings.Cut(spec, "=")
	s := app.ProfileServer{Server: strings.TrimSpace(server)}
	if s.Server == "" {
		return s, fmt.Errorf("%q: write SERVER or SERVER=TOOL,TOOL", spec)
	}
	if hasTools {
		for _, t := range strings.Split(tools, ",") {
			if t = strings.TrimSpace(t); t != "" && !slices.Contains(s.Tools, t) {
				s.Tools = append(s.Tools, t)
			}
		}
		if len(s.Tools) == 0 {
			return s, fmt.Errorf("%q: list tools after =, or give the server alone for all its tools", spec)
		}
	}
	return s, nil
}

func newProfileRmCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a profile (its endpoint stops, its client entries go)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			a, err := e.catalogApp()
			if err != nil {
				return err
			}
			if err := a.RemoveProfile(argv[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Removed profile %s\n", argv[0])
			return err
		},
	}
}

var errProfileAndNames = errors.New("give --profile NAME, or server names, not both")
