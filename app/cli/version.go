package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"keyport/app"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Keyport's version",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "keyport %s (%s, %s/%s)\n%s\n",
				app.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH, app.PeerCheck())
			return err
		},
	}
}
