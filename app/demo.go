package app

import (
	"context"

	"keyport/app/catalog"
	"keyport/app/catalog/demo"
)

// demoRuntime is the in-process demo MCP server.
type demoRuntime struct {
	url  string
	stop func(context.Context) error
}

// demoServer is the catalog entry of the built-in demo server. Its URL is
// known once it runs; proxyConfig swaps in the live one.
func (a *App) demoServer() catalog.Server { return demo.CatalogServer("http://127.0.0.1/mcp") }

// isDemo reports whether name is the built-in demo server, which exists
// only while the catalog is empty (a user's server may also be called demo).
func (a *App) isDemo(name string) bool { return name == DemoName && a.catalog().Empty() }

// ensureDemo starts the demo server once per process, with its token from
// the keychain (created on first use), and returns its URL.
func (a *App) ensureDemo(ctx context.Context) (string, error) {
	a.rtMu.Lock()
	defer a.rtMu.Unlock()
	if a.demo != nil {
		return a.demo.url, nil
	}
	token, err := demo.EnsureToken(a.secrets)
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
