package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"keyport/app/catalog"
	"keyport/app/oauth"
	"keyport/proxymgr"
)

// This file holds what a proxy of this process does when an OAuth server
// needs a new sign-in in the middle of a session: the server asks for a
// wider scope (403 insufficient_scope), the refresh token is dead, or the
// server moved to another authorization server. The proxy's request waits
// (bounded) for one sign-in, then goes upstream once more with the new
// token, so the AI client's session goes on.

// SignInPrompt says how a proxy of this process gets a new sign-in.
type SignInPrompt int

const (
	// PromptNever answers the request with 503 "sign in to NAME in
	// Keyport" at once (the default: nobody watches this process).
	PromptNever SignInPrompt = iota
	// PromptTray (the tray app) sends a desktop notification and offers
	// "Sign in to NAME" in the tray menu; one click opens the browser. The
	// request waits for the person (no click: the 503).
	PromptTray
	// PromptBrowser (a bridge's own proxy, keyport proxy in a terminal)
	// opens the browser itself, as mcp-remote does, at most once a minute
	// per server across processes, and never for a request already sent
	// again.
	PromptBrowser
)

// DefaultSignInWait bounds how long a client's request waits for a sign-in.
const DefaultSignInWait = 2 * time.Minute

// browserEvery is the least time between two browsers (or notifications)
// proxies open for one server on their own.
const browserEvery = time.Minute

// signInPrompts is the App's prompting state.
type signInPrompts struct {
	mu       sync.Mutex
	mode     SignInPrompt
	open     func(string) error
	wait     time.Duration
	flights  map[string]*signInFlight
	notified map[string]time.Time // PromptTray: last notice per server
}

// signInFlight is one sign-in the proxies of this process wait for.
type signInFlight struct {
	done chan struct{}
	err  error
}

// SetSignInPrompt sets how this process's proxies get a new sign-in
// mid-session: PromptTray in the tray app; PromptBrowser for keyport
// connect and keyport proxy in a terminal, with open opening the browser
// (oauth.BrowserOpener); wait bounds a request's wait (0: DefaultSignInWait).
func (a *App) SetSignInPrompt(mode SignInPrompt, open func(string) error, wait time.Duration) {
	a.prompts.mu.Lock()
	defer a.prompts.mu.Unlock()
	a.prompts.mode, a.prompts.open, a.prompts.wait = mode, open, wait
}

// proxyCredentials is the credentials function of a server's proxy: for
// OAuth it also gets a new sign-in when the current one is unusable (never
// signed in, a dead refresh token), then hands out the new token.
func (a *App) proxyCredentials(s catalog.Server) proxymgr.CredentialsFunc {
	f := a.credentialsFunc(s)
	if f == nil || s.Auth.Type != catalog.AuthOAuth {
		return f
	}
	return func(ctx context.Context) (http.Header, error) {
		h, err := f(ctx)
		if !errors.Is(err, oauth.ErrSignInNeeded) || proxymgr.Retried(ctx) {
			return h, err
		}
		c, cerr := a.oauthCredentials(s)
		if cerr != nil || a.signInAgain(ctx, s, c, nil, err) != nil {
			return nil, err
		}
		return c.Header(ctx)
	}
}

// oauthHooks sets the credential hooks of an OAuth server's proxy: a 401
// refreshes the token (or, when the refresh is dead or the server moved to
// another authorization server, gets a new sign-in); a 403
// insufficient_scope gets a sign-in with the wider scope, a bounded number
// of times. Either way the request is then sent once more.
func (a *App) oauthHooks(cfg *proxymgr.Config, s catalog.Server) {
	cfg.CredentialsRejected = func(ctx context.Context, h, sent http.Header) error {
		if proxymgr.Retried(ctx) {
			return nil // the new credentials were refused too: 503
		}
		c, err := a.oauthCredentials(s)
		if err != nil {
			return err
		}
		err = c.Refused(ctx, sent.Get("Authorization"), h)
		if errors.Is(err, oauth.ErrSignInNeeded) && a.signInAgain(ctx, s, c, h, err) == nil {
			err = nil
		}
		if err != nil {
			return err
		}
		return proxymgr.ErrRetryRequest
	}
	cfg.CredentialsForbidden = func(ctx context.Context, h, sent http.Header) error {
		c, err := a.oauthCredentials(s)
		if err != nil {
			return err
		}
		action, err := c.StepUp(ctx, h, sent.Get("Authorization"))
		switch action {
		case oauth.PassThrough:
			return nil
		case oauth.Retry:
			return proxymgr.ErrRetryRequest // a newer sign-in has the scopes
		case oauth.SignIn:
			if !proxymgr.Retried(ctx) && a.signInAgain(ctx, s, c, h, err) == nil {
				return proxymgr.ErrRetryRequest
			}
		}
		return err
	}
}

// signInAgain gets server s a new sign-in the way this process prompts,
// waiting at most the sign-in wait (and ctx). nil means a new sign-in is
// in the keychain and c has it; otherwise the request keeps its error
// (cause). One prompt per server at a time: in this process the callers
// share it; across processes oauth.PromptLock serializes them, and a
// process that waited finds the other's sign-in.
func (a *App) signInAgain(ctx context.Context, s catalog.Server, c *oauth.Credentials, challenge http.Header, cause error) error {
	a.prompts.mu.Lock()
	mode, open, wait := a.prompts.mode, a.prompts.open, a.prompts.wait
	if mode == PromptNever {
		a.prompts.mu.Unlock()
		return cause
	}
	if wait <= 0 {
		wait = DefaultSignInWait
	}
	if a.prompts.flights == nil {
		a.prompts.flights = map[string]*signInFlight{}
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if f := a.prompts.flights[s.Name]; f != nil {
		a.prompts.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return cause
		}
	}
	f := &signInFlight{done: make(chan struct{})}
	a.prompts.flights[s.Name] = f
	a.prompts.mu.Unlock()
	defer func() {
		a.prompts.mu.Lock()
		delete(a.prompts.flights, s.Name)
		a.prompts.mu.Unlock()
		close(f.done)
	}()
	f.err = a.promptSignIn(ctx, s, c, challenge, cause, mode, open)
	return f.err
}

// promptSignIn is signInAgain's one prompt, under the cross-process lock.
func (a *App) promptSignIn(ctx context.Context, s catalog.Server, c *oauth.Credentials, challenge http.Header, cause error,
	mode SignInPrompt, open func(string) error) error {
	since := time.Now()
	log := a.log.With("server", s.Name)
	unlock, err := oauth.PromptLock(ctx, a.lockDir(), s.Name)
	if err != nil {
		return cause
	}
	defer unlock()
	// Another process may have signed in while this one waited for the lock.
	done, stop := context.WithCancel(ctx)
	stop()
	if c.AwaitSignIn(done, since) == nil {
		return nil
	}
	reason := why(cause)
	switch mode {
	case PromptTray:
		a.prompts.mu.Lock()
		last := a.prompts.notified[s.Name]
		if a.prompts.notified == nil {
			a.prompts.notified = map[string]time.Time{}
		}
		notify := time.Since(last) >= browserEvery
		if notify {
			a.prompts.notified[s.Name] = time.Now()
		}
		a.prompts.mu.Unlock()
		a.publish(Event{Kind: EventServers, Server: s.Name})
		if notify {
			a.publish(Event{Kind: EventNotice, Server: s.Name, Title: "Sign in to " + s.Name,
				Body: fmt.Sprintf("%s needs you to sign in again (%s). Choose \"Sign in to %s\" in Keyport's tray menu; "+
					"your AI client's request waits for it.", s.Name, reason, s.Name)})
		}
		log.Info("waiting for the user to sign in", "reason", reason)
		if err := c.AwaitSignIn(ctx, since); err != nil {
			return cause
		}
		return nil
	case PromptBrowser:
		if open == nil {
			open = oauth.BrowserOpener(a.env)
		}
		if at := oauth.BrowserOpenedAt(a.lockDir(), s.Name); time.Since(at) < browserEvery {
			log.Warn("a sign-in is needed, but a browser was opened for it less than a minute ago; not opening another",
				"reason", reason)
			return cause
		}
		if err := oauth.MarkBrowserOpened(a.lockDir(), s.Name, time.Now()); err != nil {
			log.Warn("could not record the sign-in prompt; not opening the browser", "err", err)
			return cause
		}
		cfg, err := a.LoginConfig(s.Name)
		if err != nil {
			return cause
		}
		cfg.Challenge = challenge
		cfg.OpenBrowser = func(u string) error {
			log.Warn("opening the browser to sign in again", "reason", reason)
			return open(u)
		}
		if dl, ok := ctx.Deadline(); ok {
			cfg.Timeout = time.Until(dl)
		}
		res, err := oauth.Login(ctx, cfg)
		if err != nil {
			log.Warn("the sign-in failed", "err", err)
			return cause
		}
		log.Info("signed in again", "scopes", strings.Join(res.Scopes, " "))
		a.oauthChanged(s.Name)
		return nil
	}
	return cause
}

// why is the reason of a sign-in-needed error, for notices and logs.
func why(err error) string {
	var sn *oauth.SignInNeededError
	if errors.As(err, &sn) && sn.Reason != "" {
		return sn.Reason
	}
	return "the sign-in is no longer usable"
}
