// Package cli implements the keyport command line: one cobra command per verb,
// each a thin call into app.App.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"keyport/app"
)

// Exit codes of the keyport command.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// usageError marks an error caused by how the command was called (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usage wraps err as a usage error.
func usage(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// args wraps a cobra argument validator so its errors exit with ExitUsage.
func args(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error { return usage(v(cmd, a)) }
}

// IO is where a command reads and writes; tests substitute buffers.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

// StdIO is the process's standard streams.
func StdIO() IO { return IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr} }

// Main runs the CLI with argv (without the program name) and returns the
// process exit code.
func Main(ctx context.Context, argv []string, stdio IO) int {
	return MainWith(ctx, argv, stdio, app.Options{})
}

// MainWith is Main with the App's options (tests point it at a temp config
// dir and a test keychain).
func MainWith(ctx context.Context, argv []string, stdio IO, opts app.Options) int {
	env := &env{io: stdio, opts: opts}
	defer env.close()
	root := newRoot(env)
	root.SetArgs(argv)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stdio.Err, "keyport: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stdio.Err, "Run 'keyport %s --help' for usage.\n", commandPath(root, argv))
		return ExitUsage
	}
	return ExitFailure
}

// commandPath names the subcommand argv selects, for the usage hint.
func commandPath(root *cobra.Command, argv []string) string {
	cmd, _, err := root.Find(argv)
	if err != nil || cmd == root {
		return ""
	}
	return cmd.CommandPath()[len(root.Name())+1:]
}

// env is what every command shares: the streams and the App, created on
// first use so that verbs that need no App (version, help) stay instant.
type env struct {
	io   IO
	opts app.Options
	a    *app.App
}

// app returns the App, creating it on first use.
func (e *env) app() (*app.App, error) {
	if e.a != nil {
		return e.a, nil
	}
	opts := e.opts
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(e.io.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	a, err := app.New(opts)
	if err != nil {
		return nil, err
	}
	e.a = a
	return a, nil
}

// catalogApp is app() for verbs that read servers.yaml: it fails with the
// file's errors when it does not load.
func (e *env) catalogApp() (*app.App, error) {
	a, err := e.app()
	if err != nil {
		return nil, err
	}
	if err := a.CatalogErr(); err != nil {
		return nil, err
	}
	// Loud, on every verb: the organization's file is broken and an older
	// version of it applies.
	if path, problem, blocked := a.ManagedStatus(); path != "" {
		if problem != "" {
			fmt.Fprintf(e.io.Err, "keyport: warning: %s\n", problem)
		}
		for _, b := range blocked {
			fmt.Fprintf(e.io.Err, "keyport: warning: servers.yaml's server %q is not used: %s\n", b.Name, b.Reason)
		}
	}
	return a, nil
}

func (e *env) close() {
	if e.a != nil {
		_ = e.a.Close()
	}
}

// NewRoot builds the keyport command tree with the user's real setup.
func NewRoot(stdio IO) *cobra.Command { return newRoot(&env{io: stdio}) }

func newRoot(e *env) *cobra.Command {
	stdio := e.io
	root := &cobra.Command{
		Use:   "keyport",
		Short: "Secure local access to remote MCP servers",
		Long: `Keyport gives your AI clients secure, convenient access to remote MCP servers.

Run keyport with no arguments to open the tray app. The same binary is a CLI:
every verb below works without a graphical session.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       app.Version,
		// With no verb, main starts the GUI; a bare root command only shows help.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		// Unknown verbs are usage errors (exit 2), not failures.
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) > 0 {
				return usage(fmt.Errorf("unknown command %q for %q", a[0], cmd.CommandPath()))
			}
			return nil
		},
	}
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	root.SetVersionTemplate("keyport {{.Version}}\n")
	root.AddCommand(newVersionCmd())
	root.AddCommand(newLsCmd(e), newAddCmd(e), newRmCmd(e), newSecretCmd(e))
	root.AddCommand(newConfigCmd(e), newConnectCmd(e), newRegistryCmd(e))
	root.AddCommand(newProxyCmd(e), newProfileCmd(e))
	root.AddCommand(newLoginCmd(e), newLogoutCmd(e))
	root.AddCommand(newTelemetryCmd(e))
	return root
}
