package oauth

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// DefaultMetadataCallbackPort is the loopback port of the redirect URI a
// Client ID Metadata Document lists (and the port a sign-in with it
// listens on) unless the server's auth.callback_port says otherwise: the
// document is hosted once for everyone, so the port must be fixed.
const DefaultMetadataCallbackPort = 33418

// ClientMetadata is a Client ID Metadata Document (draft-ietf-oauth-client-
// id-metadata-document): the JSON an organization hosts at an https URL
// that authorization servers supporting it accept as Keyport's client_id.
type ClientMetadata struct {
	ClientID                string   `json:"client_id"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	ApplicationType         string   `json:"application_type"`
}

// CheckClientMetadataURL validates a Client ID Metadata Document URL: an
// https URL with a path, no fragment and no user info (the draft's rules
// for a URL client ID).
func CheckClientMetadataURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") == "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("client metadata document URL %q must be an https URL with a path (e.g. https://example.com/keyport/client.json)", raw)
	}
	return nil
}

// NewClientMetadata returns Keyport's Client ID Metadata Document for the
// URL it is hosted at (its client_id), with the loopback redirect URI on
// port (0: DefaultMetadataCallbackPort): a native public client using the
// authorization code grant with PKCE and refresh tokens.
func NewClientMetadata(clientID string, port int) (*ClientMetadata, error) {
	if err := CheckClientMetadataURL(clientID); err != nil {
		return nil, err
	}
	if port == 0 {
		port = DefaultMetadataCallbackPort
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("redirect port %d is not a port number (1-65535)", port)
	}
	return &ClientMetadata{
		ClientID:                clientID,
		ClientName:              "Keyport",
		RedirectURIs:            []string{fmt.Sprintf("http://127.0.0.1:%d%s", port, callbackPath)},
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		TokenEndpointAuthMethod: "none",
		ApplicationType:         "native",
	}, nil
}

// JSON is the document, indented, with a final newline.
func (m *ClientMetadata) JSON() []byte {
	b, _ := json.MarshalIndent(m, "", "  ")
	return append(b, '\n')
}
