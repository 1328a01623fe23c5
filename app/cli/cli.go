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

// Program is the command's name in help and usage hints: the binary is
// keyport, or keyport-cli (MainAs).
const Program = "keyport"

// Main runs the CLI with argv (without the program name) and returns the
// process exit code.
func Main(ctx context.Context, argv []string, stdio IO) int {
	return MainAs(ctx, Program, argv, stdio)
}

// MainAs is Main for a binary named prog (keyport-cli): help and usage
// hints name the command the user typed.
func MainAs(ctx context.Context, prog string, argv []string, stdio IO) int {
	return mainWith(ctx, prog, argv, stdio, app.Options{})
}

// MainWith is Main with the App's options (tests point it at a temp config
// dir and a test keychain).
func MainWith(ctx context.Context, argv []string, stdio IO, opts app.Options) int {
	return mainWith(ctx, Program, argv, stdio, opts)
}

func mainWith(ctx context.Context, prog string, argv []string, stdio IO, opts app.Options) int {
	env := &env{io: stdio, opts: opts, prog: prog}
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
		fmt.Fprintf(stdio.Err, "Run '%s --help' for usage.\n", commandPath(root, argv))
		return ExitUsage
	}
	return ExitFailure
}

// commandPath is the command argv selects, as the user types it ("keyport
// secret set"), for the usage hint: the deepest verb found, even when its
// arguments are wrong, else the program itself.
func commandPath(root *cobra.Command, argv []string) string {
	cmd, _, _ := root.Find(argv)
	if cmd == nil {
		return root.Name()
	}
	return cmd.CommandPath()
}

// env is what every command shares: the streams and the App, created on
// first use so that verbs that need no App (version, help) stay instant.
type env struct {
	io   IO
	opts app.Options
	prog string // the program's name; "" is Program
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
	prog := e.prog
	if prog == "" {
		prog = Program
	}
	long := `Keyport gives your AI clients secure, convenient access to remote MCP servers.

Run keyport with no arguments to open the tray app. The same binary is a CLI:
every verb below works without a graphical session.`
	if prog != Program {
		long = `Keyport gives your AI clients secure, convenient access to remote MCP servers.

` + prog + ` is Keyport's command line without the desktop app (run keyport
to open the tray app); every verb below works without a graphical session.`
	}
	root := &cobra.Command{
		Use:           prog,
		Short:         "Secure local access to remote MCP servers",
		Long:          long,
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
	root.AddCommand(newProxyCmd(e), newToolsCmd(e), newProfileCmd(e))
	root.AddCommand(newLoginCmd(e), newLogoutCmd(e), newOAuthCmd(e))
	root.AddCommand(newTelemetryCmd(e))
	return root
}
