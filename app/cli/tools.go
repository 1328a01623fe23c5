package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"keyport/app"
)

// toolRow is one tool in `keyport tools NAME --format json`. Field names
// are a stable interface: add fields, never rename them.
type toolRow struct {
	Name        string   `json:"name"`
	State       string   `json:"state"` // approved, held, blocked, not pinned yet, denied by policy
	Allowed     bool     `json:"allowed"`
	Description string   `json:"description"`
	Hash        string   `json:"hash,omitempty"`
	Flags       []string `json:"flags"`
}

// toolsReport is `keyport tools NAME --format json`.
type toolsReport struct {
	Server  string    `json:"server"`
	Pinning string    `json:"pinning"`
	Source  string    `json:"source"` // "server": listed now; "recorded": what Keyport recorded (the server did not answer)
	Error   string    `json:"error,omitempty"`
	Pending int       `json:"pending"` // changes to review
	Tools   []toolRow `json:"tools"`
}

func newToolsCmd(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "tools NAME",
		Short: "List a server's tools and review the ones that changed (tool pinning)",
		Long: `tools lists a server's tools as Keyport sees them, each with its state:

  approved          its definition is the one you approved (or the one the
                    server first listed: trust on first use)
  held              new, or its description or schema changed since you
                    approved it: hidden from clients and its calls refused
                    until you review it
  blocked           held, and you chose to keep it blocked
  not pinned yet    no client listed the server through Keyport yet
  denied by policy  the server's tool policy (tools.allow/deny) hides it

The list is asked of the server now (with its credentials); when it does not
answer, Keyport shows what it recorded. Flags mark suspicious text
(invisible characters, instructions to the model, references to secrets,
a name another server also uses).

  keyport tools diff NAME [TOOL]           what changed, old → new
  keyport tools approve NAME TOOL...|--all  let clients see the new definitions
  keyport tools block NAME TOOL...|--all    keep them hidden, and stop counting them
  keyport tools reset NAME                  forget every approval; the next list is trusted`,
		Example: `  keyport tools github
  keyport tools github --format json
  keyport tools diff github search_code
  keyport tools approve github search_code`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if format != "text" && format != "json" {
				return usage(fmt.Errorf("--format %q: use text or json", format))
			}
			core, err := e.catalogApp()
			if err != nil {
				return err
			}
			name := a[0]
			v, err := core.Server(name)
			if err != nil {
				return err
			}
			rep := toolsReport{Server: name, Pinning: v.Pinning, Source: "server", Pending: v.ToolChanges}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			tools, err := core.Tools(ctx, name)
			if err != nil {
				rep.Source, rep.Error = "recorded", err.Error()
				if tools, err = core.PinnedTools(name); err != nil {
					return err
				}
			}
			if v, err := core.Server(name); err == nil {
				rep.Pending = v.ToolChanges
			}
			rep.Tools = []toolRow{}
			for _, t := range tools {
				state := t.Pin
				if state == "" {
					state = map[bool]string{true: "allowed", false: app.PinDenied}[t.Allowed]
				}
				flags := t.Flags
				if flags == nil {
					flags = []string{}
				}
				rep.Tools = append(rep.Tools, toolRow{Name: t.Name, State: state, Allowed: t.Allowed, Description: t.Description, Hash: t.Hash, Flags: flags})
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return printTools(cmd.OutOrStdout(), rep)
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	cmd.AddCommand(newToolsDiffCmd(e), newToolsDecideCmd(e, true), newToolsDecideCmd(e, false), newToolsResetCmd(e))
	return cmd
}

func printTools(w io.Writer, rep toolsReport) error {
	if rep.Error != "" {
		fmt.Fprintf(w, "%s did not answer (%s); showing what Keyport recorded.\n\n", rep.Server, rep.Error)
	}
	if rep.Pinning == "off" {
		fmt.Fprintf(w, "Tool pinning is off for %s (tools.pinning: off in servers.yaml).\n\n", rep.Server)
	}
	if len(rep.Tools) == 0 {
		_, err := fmt.Fprintf(w, "%s lists no tools.\n", rep.Server)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Tool\tState\tDescription")
	fmt.Fprintln(tw, "----\t-----\t-----------")
	for _, t := range rep.Tools {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", app.Printable(t.Name), t.State, oneLine(t.Description, 60))
		for _, f := range t.Flags {
			fmt.Fprintf(tw, "\t\t! %s\n", oneLine(f, 90))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rep.Pending > 0 {
		_, err := fmt.Fprintf(w, "\n%d tool %s to review: keyport tools diff %s\n", rep.Pending, plural(rep.Pending, "change", "changes"), rep.Server)
		return err
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func newToolsDiffCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "diff NAME [TOOL]",
		Short: "Show what changed in a server's held tools, old → new",
		Args:  args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			core, err := e.catalogApp()
			if err != nil {
				return err
			}
			r, err := core.ToolReview(a[0])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if r.Problem != "" {
				fmt.Fprintf(w, "Keyport could not read the approved tool definitions of %s: %s.\n\n", r.Server, r.Problem)
			}
			shown := 0
			for _, c := range r.Changes {
				if len(a) == 2 && c.Tool != a[1] {
					continue
				}
				shown++
				printChange(w, r.Server, c)
			}
			if len(a) == 2 && shown == 0 {
				return fmt.Errorf("tool %q of %s has no change to review (run keyport tools %s)", a[1], a[0], a[0])
			}
			if shown == 0 {
				_, err := fmt.Fprintf(w, "No tool changes to review for %s.\n", r.Server)
				return err
			}
			_, err = fmt.Fprintf(w, "Approve with: keyport tools approve %s TOOL... (or --all); keep blocked with: keyport tools block %s TOOL...\n", r.Server, r.Server)
			return err
		},
	}
}

func printChange(w io.Writer, server string, c app.ToolChange) {
	state := ""
	switch {
	case c.Blocked:
		state = ", kept blocked"
	case c.DeniedByPolicy:
		state = ", denied by the tool policy anyway"
	}
	if c.Kind == "new" {
		fmt.Fprintf(w, "%s: a new tool (%s)%s\n", app.Printable(c.Tool), short(c.NewHash), state)
	} else {
		fmt.Fprintf(w, "%s: changed since you approved it (%s → %s)%s\n", app.Printable(c.Tool), short(c.OldHash), short(c.NewHash), state)
	}
	for _, f := range c.Flags {
		fmt.Fprintf(w, "  ! %s\n", f)
	}
	section := func(what string, rows []app.DiffRow) {
		if len(rows) == 0 {
			return
		}
		same := true
		for _, r := range rows {
			same = same && r.Op == " "
		}
		if same {
			fmt.Fprintf(w, "(%s unchanged)\n", what)
			return
		}
		fmt.Fprintf(w, "--- %s (approved)\n+++ %s (now)\n", what, what)
		io.WriteString(w, app.UnifiedDiff(rows))
	}
	section("description", c.DescriptionDiff)
	section("schema", c.SchemaDiff)
	fmt.Fprintln(w)
}

func short(h string) string {
	h = strings.TrimPrefix(h, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	if h == "" {
		return "-"
	}
	return "sha256:" + h
}

// newToolsDecideCmd is `tools approve` (approve) or `tools block`.
func newToolsDecideCmd(e *env, approve bool) *cobra.Command {
	var all bool
	verb, help, done := "approve", "Approve the held definitions of tools: clients see them at once", "Approved"
	if !approve {
		verb, help, done = "block", "Keep held tools blocked: still hidden, no longer a change to review", "Kept blocked"
	}
	cmd := &cobra.Command{
		Use:   verb + " NAME TOOL... | " + verb + " NAME --all",
		Short: help,
		Args:  args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			name, tools := a[0], a[1:]
			if all == (len(tools) > 0) {
				return usage(fmt.Errorf("tools %s: name the tools, or pass --all (not both)", verb))
			}
			core, err := e.catalogApp()
			if err != nil {
				return err
			}
			decide := core.ApproveTools
			if !approve {
				decide = core.BlockTools
			}
			ds, err := decide(name, tools, all)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if len(ds) == 0 {
				_, err := fmt.Fprintf(w, "No tool changes to review for %s.\n", name)
				return err
			}
			for _, d := range ds {
				fmt.Fprintf(w, "%s %s (%s → %s)\n", done, app.Printable(d.Tool), shortOr(d.OldHash, "new"), short(d.NewHash))
			}
			if approve {
				_, err = fmt.Fprintln(w, "Clients connected through Keyport are told to list their tools again.")
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, verb+" every held tool of the server")
	return cmd
}

func shortOr(h, none string) string {
	if h == "" {
		return none
	}
	return short(h)
}

func newToolsResetCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "reset NAME",
		Short: "Forget every approved tool definition of a server: its next list is trusted as it is",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			core, err := e.catalogApp()
			if err != nil {
				return err
			}
			n, err := core.ResetPins(a[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Forgot %d approved tool %s of %s; the next list of its tools is trusted as it is.\n", n, plural(n, "definition", "definitions"), a[0])
			return err
		},
	}
}
