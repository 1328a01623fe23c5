package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"keyport/app/secrets"
	"keyport/app/telemetry"
)

func newTelemetryCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "telemetry",
		Short: "The export of audit events, metrics and traces to an OpenTelemetry collector",
		Long: `Keyport exports every audit event, metrics and traces to the OpenTelemetry
collector set in servers.yaml (telemetry:), by your organization's managed
settings, or by the OTEL_EXPORTER_OTLP_* environment variables. Events wait
in the local audit log while the collector is away; nothing is dropped.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var format string
	status := &cobra.Command{
		Use:   "status",
		Short: "Show where the export goes, whether the collector takes it, and the backlog",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return usage(fmt.Errorf("--format %q: use text or json", format))
			}
			a, err := e.catalogApp()
			if err != nil {
				return err
			}
			st, err := a.TelemetryStatus()
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return printTelemetry(cmd.OutOrStdout(), st)
		},
	}
	status.Flags().StringVar(&format, "format", "text", "output format: text or json")
	secret := &cobra.Command{Use: "secret", Short: "Secret headers of the export (kept in the OS keychain)", Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	secret.AddCommand(&cobra.Command{
		Use:   "set HEADER",
		Short: "Store the value of a header listed in telemetry.secret_headers (asked without echo, or read from stdin)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			a, err := e.catalogApp()
			if err != nil {
				return err
			}
			v, err := secrets.NewPrompter(e.io.In, e.io.Err).Read("value of " + argv[0])
			if err != nil {
				return err
			}
			if err := a.SetTelemetrySecret(argv[0], v); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Stored %s in the OS keychain.\n", argv[0])
			return nil
		},
	})
	cmd.AddCommand(status, secret)
	return cmd
}

func printTelemetry(w io.Writer, st telemetry.Status) error {
	if !st.Enabled {
		_, err := fmt.Fprintf(w, "Telemetry export: off (%s)\n", st.Reason)
		return err
	}
	by := "servers.yaml or the environment"
	if st.Managed {
		by = "set by your organization"
	}
	fmt.Fprintf(w, "Telemetry export: %s (%s, %s)\n", st.Endpoint, st.Protocol, by)
	switch {
	case st.Active && st.PID != 0:
		fmt.Fprintf(w, "Exporting process: pid %d\n", st.PID)
	case st.Reason != "":
		fmt.Fprintf(w, "%s\n", st.Reason)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Signal\tConnected\tBacklog\tExported\tLast error")
	for _, s := range st.Signals {
		conn := "no"
		if s.Connected {
			conn = "yes"
		}
		backlog := fmt.Sprintf("%s (~%d events)", bytesText(s.BacklogBytes), s.BacklogEvents)
		if s.OverLimit {
			backlog += " OVER LIMIT"
		}
		last := s.LastError
		if last == "" {
			last = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", s.Signal, conn, backlog, s.Exported, strings.ReplaceAll(last, "\n", " "))
		if s.LostBytes > 0 {
			defer fmt.Fprintf(w, "%s: %s of audit events were rotated out of the audit log before they could be exported.\n", s.Signal, bytesText(s.LostBytes))
		}
	}
	if !st.Updated.IsZero() {
		defer fmt.Fprintf(w, "As of %s.\n", st.Updated.Local().Format(time.TimeOnly))
	}
	return tw.Flush()
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
