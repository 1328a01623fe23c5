package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"keyport/proxymgr"
)

// A server's port stays the same across every way Keyport serves it (the
// tray app, `keyport proxy NAME`, a bridge's own proxy), so client entries
// stay right. When the tray app turns a proxy on while another Keyport
// process already serves that server on its port (a bridge Claude Desktop
// started before the app, a `keyport proxy NAME` in a terminal), clients
// are served all the same: the app says so and takes the port over as soon
// as that process lets it go.

// portWaitInterval is how often the app checks whether the other process
// let the port go.
const portWaitInterval = 2 * time.Second

// servedElsewhere reports whether err, from starting name's proxy on port,
// means another Keyport process serves name there. In the tray app it then
// records that and waits in the background to take the port over.
func (a *App) servedElsewhere(name string, port int, err error) bool {
	if !errors.Is(err, proxymgr.ErrPortInUse) || port == 0 {
		return false
	}
	a.rtMu.Lock()
	started := a.started
	a.rtMu.Unlock()
	if !started || !probeProxy(port, name) {
		return false
	}
	a.setStartErr(name, fmt.Errorf("another Keyport process (a 'keyport connect' bridge or 'keyport proxy %s') serves %s on port %d; Keyport takes it over when that process ends", name, name, port))
	a.rtMu.Lock()
	if a.elsewhere == nil {
		a.elsewhere = map[string]bool{}
	}
	_, waiting := a.elsewhere[name]
	a.elsewhere[name] = true
	a.rtMu.Unlock()
	a.publish(Event{Kind: EventServers, Server: name})
	if !waiting {
		ctx := a.runContext()
		a.bg.Go(func() { a.awaitPort(ctx, name, port) })
	}
	return true
}

// isServedElsewhere reports whether another Keyport process serves name's
// proxy for the app now.
func (a *App) isServedElsewhere(name string) bool {
	a.rtMu.Lock()
	defer a.rtMu.Unlock()
	return a.elsewhere[name]
}

// awaitPort starts name's proxy once the other process let port go, as
// long as the user keeps it on. a.elsewhere[name] exists while it runs,
// and is true while the other process serves.
func (a *App) awaitPort(ctx context.Context, name string, port int) {
	defer func() {
		a.rtMu.Lock()
		delete(a.elsewhere, name)
		a.rtMu.Unlock()
		a.publish(Event{Kind: EventServers, Server: name})
	}()
	t := time.NewTicker(portWaitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !a.state.Get().Proxies[name].Enabled {
			return // turned off meanwhile (stopProxy cleared the message)
		}
		if probeProxy(port, name) {
			continue
		}
		a.rtMu.Lock()
		a.elsewhere[name] = false // servedElsewhere sets it again if another process won the port
		a.rtMu.Unlock()
		if err := a.startProxy(ctx, name); err != nil {
			a.log.Warn("could not take over the proxy's port", "server", name, "err", err)
		}
		if !a.isServedElsewhere(name) {
			return
		}
	}
}
