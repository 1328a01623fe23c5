package cli

import (
	"github.com/spf13/cobra"
)

func newOAuthCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "oauth",
		Short: "OAuth helpers (the client metadata document an organization hosts)",
		Args:  args(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var url string
	var port int
	meta := &cobra.Command{
		Use:   "client-metadata [--url URL] [--redirect-port N]",
		Short: "Print Keyport's Client ID Metadata Document, to host at an https URL",
		Long: `Print the Client ID Metadata Document (JSON) an organization hosts at an
https URL so that authorization servers that support such documents accept
that URL as Keyport's client ID, with no registration per user.

Host the output at the URL (--url, else oauth.client_metadata_url of
servers.yaml), then set oauth.client_metadata_url (for every server) or a
server's auth.client_metadata_url to it. The redirect URI it lists is
http://127.0.0.1:PORT/callback on a fixed port (33418 unless
--redirect-port; then set auth.callback_port to the same port).`,
		Example: `  keyport oauth client-metadata --url https://example.com/keyport/client.json > client.json`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := e.catalogApp()
			if err != nil {
				return err
			}
			doc, err := a.ClientMetadataDocument(url, port)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(doc)
			return err
		},
	}
	meta.Flags().StringVar(&url, "url", "", "the https URL the document will be hosted at (its client_id)")
	meta.Flags().IntVar(&port, "redirect-port", 0, "the port of the 127.0.0.1 redirect URI (default 33418)")
	cmd.AddCommand(meta)
	return cmd
}
