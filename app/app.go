// Package app is Keyport's application core. It owns the server catalog, the
// OS keychain, the persisted state, the proxy manager and the client config
// watcher, and is the one place that combines them: the CLI (app/cli) and the
// GUI (ui) call only its methods. Nothing below app imports fyne.
package app

import "log/slog"

// Options configure an App.
type Options struct {
	// Logger receives the core's logs; nil means slog.Default().
	Logger *slog.Logger
}

// App is the application core shared by the CLI and the GUI.
type App struct {
	log *slog.Logger
}

// New returns an App ready to use.
func New(opts Options) (*App, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &App{log: log}, nil
}

// Close releases what the App holds. It is safe to call more than once.
func (a *App) Close() error { return nil }
