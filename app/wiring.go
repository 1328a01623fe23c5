package app

import (
	"fmt"

	"keyport/app/catalog"
	"keyport/app/oauth"
)

// This file holds what the CLI's sign-in verbs need from the catalog and
// the keychain (a proxy's and a bridge's are in bridge.go).

// LoginConfig is the sign-in configuration of an OAuth server of the
// catalog, for `keyport login NAME`; the caller sets how to open the
// browser and the timeout.
func (a *App) LoginConfig(name string) (oauth.LoginConfig, error) {
	s, err := a.server(name)
	if err != nil {
		return oauth.LoginConfig{}, err
	}
	if s.Auth.Type != catalog.AuthOAuth {
		return oauth.LoginConfig{}, fmt.Errorf("server %q uses auth type %q; sign-in is for servers with auth.type oauth in servers.yaml", name, s.Auth.Type)
	}
	store := a.oauthStore()
	secret, err := oauth.ClientSecretFromStore(store, name)
	if err != nil {
		return oauth.LoginConfig{}, err
	}
	return oauth.LoginConfig{
		Server:       name,
		ResourceURL:  s.URL,
		ClientID:     s.Auth.ClientID,
		ClientSecret: secret,
		// Without a pre-registered client, a Client ID Metadata Document
		// where the authorization server supports one, else dynamic
		// registration (oauth.Login chooses in the spec's order).
		ClientMetadataURL: a.clientMetadataURL(s),
		Scopes:            s.Auth.Scopes,
		CallbackPort:      s.Auth.CallbackPort,
		Store:             store,
		LockDir:           a.lockDir(),
		Logger:            a.log,
	}, nil
}

// LogoutConfig is the sign-out configuration of a server, for `keyport logout NAME`.
func (a *App) LogoutConfig(name string) (oauth.LogoutConfig, error) {
	if _, err := a.server(name); err != nil {
		return oauth.LogoutConfig{}, err
	}
	return oauth.LogoutConfig{Server: name, Store: a.oauthStore(), LockDir: a.lockDir(), Logger: a.log, Revoke: true}, nil
}
