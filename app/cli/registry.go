package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"keyport/app"
	"keyport/app/secrets"
)

func newRegistryCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Find and import servers from MCP registries",
		Long: `Search MCP registries (the official registry, plus any listed under
"registries:" in servers.yaml) for remote streamable-HTTP servers, and import
one into your catalog.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	search := &cobra.Command{
		Use:     "search [TEXT]",
		Short:   "Search the registries for importable remote servers",
		Example: "  keyport registry search github",
		Args:    args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			a, err := e.app()
			if err != nil {
				return err
			}
			q := ""
			if len(argv) == 1 {
				q = argv[0]
			}
			results, err := a.SearchRegistry(cmd.Context(), q)
			if len(results) == 0 && err != nil {
				return err
			}
			if err != nil {
				fmt.Fprintf(e.io.Err, "keyport: some registries did not answer: %v\n", err)
			}
			out := cmd.OutOrStdout()
			if len(results) == 0 {
				fmt.Fprintf(out, "No importable remote server matches %q.\n", q)
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "Registry Name\tVersion\tImports As\tNeeds\tDescription")
			for _, r := range results {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Version, r.Name, needs(r), oneLine(r.Description, 60))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(out, "\nImport one with: keyport registry import REGISTRY-NAME")
			return nil
		},
	}
	var name string
	var sets []string
	imp := &cobra.Command{
		Use:   "import REGISTRY-NAME [--name NAME] [--set KEY=VALUE]...",
		Short: "Import a registry server into servers.yaml",
		Long: `Import a server from a registry (its latest version) into servers.yaml.

Keyport asks for what the server needs: secret headers without echo (they go
to the OS keychain only), other values with their defaults. Non-secret values
may also be given with --set (KEY is the header or variable name).`,
		Example: "  keyport registry import com.example/acme-analytics --name acme",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			a, err := e.catalogApp()
			if err != nil {
				return err
			}
			r, err := a.LookupRegistry(cmd.Context(), argv[0])
			if err != nil {
				return err
			}
			if name != "" {
				r.Name = name
			}
			given, err := parsePairs(sets, "=")
			if err != nil {
				return usage(fmt.Errorf("--set: %w", err))
			}
			answers := map[string]string{}
			p := secrets.NewPrompter(e.io.In, e.io.Err)
			for _, q := range r.Questions {
				if v, ok := given[q.Name]; ok {
					if q.Secret {
						return usage(fmt.Errorf("--set %s: secrets are not taken from the command line; Keyport asks for them", q.Name))
					}
					answers[q.Key] = v
					continue
				}
				label := q.Name
				if q.Description != "" {
					label += " (" + q.Description + ")"
				}
				if q.Secret {
					v, err := p.Read(label)
					if err != nil {
						return err
					}
					answers[q.Key] = v
					continue
				}
				v, err := p.ReadVisible(label, q.Default)
				if err != nil {
					return err
				}
				if v == "" && q.Required {
					return fmt.Errorf("%s is required: give it with --set %s=VALUE", q.Name, q.Name)
				}
				answers[q.Key] = v
			}
			if err := a.ImportFromRegistry(cmd.Context(), r, answers); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Imported %s as %s into %s\nRun it with: keyport proxy %s\n", r.ID, r.Name, a.ServersFile(), r.Name)
			return nil
		},
	}
	imp.Flags().StringVar(&name, "name", "", "the catalog name (default: derived from the registry name)")
	imp.Flags().StringArrayVar(&sets, "set", nil, "a non-secret value KEY=VALUE (repeatable)")
	cmd.AddCommand(search, imp)
	return cmd
}

// needs summarizes what an import asks for.
func needs(r app.RegistryResult) string {
	var parts []string
	for _, q := range r.Questions {
		if q.Secret {
			parts = append(parts, q.Name+" (secret)")
		} else if q.Required {
			parts = append(parts, q.Name)
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
