package app

import (
	"context"

	"keyport/app/catalog"
	"keyport/app/catalog/demo"
	"keyport/app/secrets"
)

// demoRuntime is the in-process demo MCP server.
type demoRuntime struct {
	url  string
	stop func(context.Context) error
}

// demoServer is the catalog entry of the built-in demo server. Its URL is
// known once it runs; proxyConfig swaps in the live one.
func (a *App) demoServer() catalog.Server {
	return catalog.Server{
		Name:        DemoName,
		Description: "Built-in demo server: echo, add, a slow tool with progress, and whoami (needs its token)",
		URL:         "http://127.0.0.1/mcp",
		Labels:      map[string]string{"kind": "demo"},
		Auth:        catalog.Auth{Type: catalog.AuthBearer},
	}
}

// ensureDemo starts the demo server once per process, with its token from
// the keychain (created on first use), and returns its URL.
func (a *App) ensureDemo(ctx context.Context) (string, error) {
	a.rtMu.Lock()
	defer a.rtMu.Unlock()
	if a.demo != nil {
		return a.demo.url, nil
	}
	token, err := a.ensureSecret(DemoName, secrets.KindBearer)
	if err != nil {
		return "", err
	}
	url, stop, err := demo.Start(context.WithoutCancel(ctx), token)
	if err != nil {
		return "", err
	}
	a.demo = &demoRuntime{url: url, stop: stop}
	return url, nil
}
