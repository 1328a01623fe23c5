package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"keyport/app/catalog"
	"keyport/app/secrets"
	"keyport/app/telemetry"
	"keyport/proxymgr"
)

// This file connects the OpenTelemetry export (app/telemetry) to the
// catalog, the keychain and the proxies. The exporter runs in the
// processes that run proxies (the tray app and `keyport proxy NAME`, of
// either binary: both main packages link the OTLP backend,
// app/telemetry/otlp); one of them per config dir is active, and reads the
// audit logs every proxy writes, a bridge's own included.

// TelemetryStatus is the export's state: of this process's exporter when
// it is the active one, else as the files on disk tell it (the CLI).
func (a *App) TelemetryStatus() (telemetry.Status, error) {
	a.rtMu.Lock()
	e := a.exporter
	a.rtMu.Unlock()
	if e != nil {
		if st := e.Status(); st.Active {
			return st, nil
		}
	}
	return telemetry.ReadStatus(a.telemetryConfig())
}

// Telemetry is TelemetryStatus for the GUI: a problem reading it becomes
// its Reason.
func (a *App) Telemetry() telemetry.Status {
	st, err := a.TelemetryStatus()
	if err != nil {
		st.Reason = err.Error()
	}
	return st
}

// SetTelemetrySecret stores the value of one of telemetry.secret_headers
// in the OS keychain (never in a file).
func (a *App) SetTelemetrySecret(header, value string) error {
	cat := a.catalog()
	t := cat.Telemetry
	if t == nil || !slices.ContainsFunc(t.SecretHeaders, func(h string) bool { return secrets.HeaderKind(h) == secrets.HeaderKind(header) }) {
		return fmt.Errorf("%s is not one of telemetry.secret_headers in %s; list it there first", header, a.ServersFile())
	}
	if value == "" {
		return errors.New("the secret is empty")
	}
	if err := a.secrets.Set(catalog.TelemetrySecretOwner, secrets.HeaderKind(header), value); err != nil {
		return err
	}
	a.restartTelemetry()
	return nil
}

func (a *App) telemetryConfig() telemetry.Config {
	cat := a.catalog()
	cfg := telemetry.Config{
		Settings: cat.Telemetry,
		Managed:  cat.TelemetryManaged(),
		AuditDir: filepath.Join(a.dir, "audit"),
		StateDir: filepath.Join(a.dir, "telemetry"),
		Version:  Version,
		Env:      a.env,
		Logger:   a.log,
		ProxyUp:  a.proxiesUp,
	}
	if cat.Telemetry != nil && len(cat.Telemetry.SecretHeaders) > 0 {
		cfg.SecretHeaders = map[string]string{}
		for _, h := range cat.Telemetry.SecretHeaders {
			if v, err := a.secrets.Get(catalog.TelemetrySecretOwner, secrets.HeaderKind(h)); err == nil {
				cfg.SecretHeaders[h] = v
			}
		}
	}
	return cfg
}

// proxiesUp feeds the keyport.proxy.up gauge.
func (a *App) proxiesUp() map[string]bool {
	a.rtMu.Lock()
	mgr := a.mgr
	a.rtMu.Unlock()
	up := map[string]bool{}
	if mgr == nil {
		return up
	}
	for _, st := range mgr.Statuses() {
		up[st.Name] = st.State == proxymgr.StateRunning || st.State == proxymgr.StateUnreachable
	}
	return up
}

// startTelemetry starts the exporter for this process (a no-op when no
// collector is configured). Problems are logged and shown in the status;
// they never stop the proxies.
func (a *App) startTelemetry() {
	e, res, err := telemetry.New(a.telemetryConfig())
	if errors.Is(err, telemetry.ErrNotLinked) {
		// A program without the OTLP backend: nothing is lost, the next
		// exporting process sends it.
		a.log.Warn("telemetry: the export is configured, but not by this process", "err", err)
		return
	}
	if err != nil {
		a.log.Error("telemetry: the export is configured but cannot run", "err", err)
		a.publish(Event{Kind: EventNotice, Title: "Telemetry export cannot run", Body: err.Error()})
		return
	}
	if !res.Enabled {
		return
	}
	var wasDown, wasOver bool
	e.OnChange(func(st telemetry.Status) {
		down, over := false, false
		for _, s := range st.Signals {
			down = down || (!s.Connected && s.LastError != "")
			over = over || s.OverLimit
		}
		switch {
		case over && !wasOver:
			a.publish(Event{Kind: EventNotice, Title: "Telemetry backlog over its limit",
				Body: "The OpenTelemetry collector has been away long; audit events wait in the audit log. Nothing is lost until the audit log's rotation reaches them."})
		case down && !wasDown:
			a.publish(Event{Kind: EventNotice, Title: "Telemetry collector unreachable",
				Body: "Audit events wait in the audit log and are sent when it answers."})
		}
		wasDown, wasOver = down, over
		a.publish(Event{Kind: EventServers})
	})
	e.Start(a.runContext())
	a.rtMu.Lock()
	a.exporter = e
	a.rtMu.Unlock()
}

// stopTelemetry stops this process's exporter (its cursors are on disk).
func (a *App) stopTelemetry() error {
	a.rtMu.Lock()
	e := a.exporter
	a.exporter = nil
	a.rtMu.Unlock()
	if e == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.Close(ctx)
}

// restartTelemetry applies new telemetry settings, in a process that
// exports.
func (a *App) restartTelemetry() {
	a.rtMu.Lock()
	running := a.exporter != nil || a.telemetryWanted
	a.rtMu.Unlock()
	if !running {
		return
	}
	if err := a.stopTelemetry(); err != nil {
		a.log.Warn("telemetry: stop", "err", err)
	}
	a.startTelemetry()
}

// wantTelemetry makes this process one that exports (the tray app,
// `keyport proxy NAME`).
func (a *App) wantTelemetry() {
	a.rtMu.Lock()
	if a.telemetryWanted {
		a.rtMu.Unlock()
		return
	}
	a.telemetryWanted = true
	a.rtMu.Unlock()
	a.startTelemetry()
}
