package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// connect opens a member session to the member's proxy. A member session
// of a client session looks like that client to the member (its
// capabilities, its name "via Keyport profile P" in the member's audit
// log), so the member asks for sampling, elicitation or roots only when the
// real client can answer, and the answers come from that client.
func (mc *memberConn) connect(ctx context.Context) (*mcp.ClientSession, error) {
	g := mc.set.g
	cfg := g.config()
	m := mc.member()
	owner := mc.set.owner
	impl := &mcp.Implementation{Name: "Keyport profile " + cfg.Name, Version: Version}
	opts := &mcp.ClientOptions{
		Logger: g.sdkLog,
		ToolListChangedHandler: func(ctx context.Context, _ *mcp.ToolListChangedRequest) {
			mc.forgetTools()
			mc.set.changed("notifications/tools/list_changed")
		},
		PromptListChangedHandler: func(ctx context.Context, _ *mcp.PromptListChangedRequest) {
			mc.set.changed("notifications/prompts/list_changed")
		},
		ResourceListChangedHandler: func(ctx context.Context, _ *mcp.ResourceListChangedRequest) {
			mc.set.changed("notifications/resources/list_changed")
		},
		ResourceUpdatedHandler: func(ctx context.Context, r *mcp.ResourceUpdatedNotificationRequest) { mc.resourceUpdated(r.Params) },
		LoggingMessageHandler: func(ctx context.Context, r *mcp.LoggingMessageRequest) {
			mc.relayRelated("notifications/message", r.Params)
		},
		ProgressNotificationHandler: func(ctx context.Context, r *mcp.ProgressNotificationClientRequest) { g.relayProgress(r.Params) },
		ElicitationCompleteHandler: func(ctx context.Context, r *mcp.ElicitationCompleteNotificationRequest) {
			mc.relayRelated("notifications/elicitation/complete", r.Params)
		},
	}
	if owner != nil {
		if ci := owner.init.ClientInfo; ci != nil && ci.Name != "" {
			impl = &mcp.Implementation{Name: ci.Name + " via Keyport profile " + cfg.Name, Version: ci.Version}
		}
		caps := &mcp.ClientCapabilities{}
		if c := owner.init.Capabilities; c != nil {
			cp := *c
			cp.Experimental, cp.Extensions = maps.Clone(c.Experimental), maps.Clone(c.Extensions)
			caps = &cp
		}
		opts.Capabilities = caps
		// Sampling and elicitation are relayed as they are (the receiving
		// middleware below): the go-sdk client's own handling would check
		// and complete what only the real client should.
	} else {
		// Stateless requests carry their client's capabilities in _meta,
		// and input_required results go back to that client as they are.
		opts.Capabilities = &mcp.ClientCapabilities{}
		opts.MultiRoundTrip = &mcp.MultiRoundTripOptions{Disabled: true}
	}
	c := mcp.NewClient(impl, opts)
	c.AddSendingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		mc.clientSend.Store(&next)
		return next
	})
	c.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			switch method {
			case "roots/list", "elicitation/create", "sampling/createMessage":
				return mc.ask(ctx, method, req.GetParams())
			}
			return next(ctx, method, req)
		}
	})
	cctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	cctx = context.WithValue(withProfile(cctx, cfg.Name), memberKey{}, mc)
	cs, err := c.Connect(cctx, &mcp.StreamableClientTransport{Endpoint: m.URL, HTTPClient: g.httpClient, MaxRetries: 3}, nil)
	if err != nil {
		if why := mc.takeRefusal(); why != "" {
			return nil, errors.New(why)
		}
		return nil, unavailable(err)
	}
	return cs, nil
}

// unavailable turns a connection error into what a user reads.
func unavailable(err error) error {
	if answer, _ := classify(err); answer != nil {
		return errors.New(answer.Message)
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "connection refused"):
		return errors.New("its Keyport proxy is not running (turn the server on in Keyport)")
	case errors.Is(err, context.DeadlineExceeded):
		return errors.New("it did not answer in time")
	}
	return err
}

// replay restores on a new member session what the client set up on the
// lost one: its log level and resource subscriptions.
func (mc *memberConn) replay(ctx context.Context, cs *mcp.ClientSession) {
	owner := mc.set.owner
	if owner == nil {
		return
	}
	owner.mu.Lock()
	level := owner.logLevel
	var subs []string
	for uri := range owner.subs {
		subs = append(subs, uri)
	}
	owner.mu.Unlock()
	if level != "" && !modernSession(cs) {
		_ = cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: level})
	}
	for _, uri := range subs {
		if mc.set.routeURI(uri) == mc {
			_ = cs.Subscribe(ctx, &mcp.SubscribeParams{URI: uri})
		}
	}
}

// modernSession reports whether a member session speaks the 2026 era.
func modernSession(cs *mcp.ClientSession) bool {
	r := cs.InitializeResult()
	return r != nil && r.ProtocolVersion >= "2026-07-28"
}

// ask forwards a request the member sends (sampling, elicitation, roots)
// to the client that caused it, and returns the client's answer.
func (mc *memberConn) ask(ctx context.Context, method string, p mcp.Params) (mcp.Result, error) {
	owner := mc.set.owner
	if owner == nil {
		return nil, &jsonrpc.Error{Code: codeInternalError, Message: fmt.Sprintf("%s: the client of profile %s uses the stateless protocol, which has no %s from a server", mc.member().Server, mc.set.g.config().Name, method)}
	}
	rctx := ctx
	if c := mc.related(); c != nil {
		rctx = c.ctx // on the stream of the call that caused it
	}
	return mc.set.g.send(rctx, owner.ss, method, p)
}

// relayRelated forwards a member's notification to its client, on the
// stream of the call it relates to when one is in flight.
func (mc *memberConn) relayRelated(method string, p mcp.Params) {
	c := mc.related()
	if owner := mc.set.owner; owner != nil {
		ctx := context.Background()
		if c != nil {
			ctx = c.ctx
		}
		mc.set.g.relay(ctx, owner.ss, method, p)
		return
	}
	if c != nil { // stateless: only the request's own stream reaches its client
		mc.set.g.relay(c.ctx, c.ss, method, p)
	}
}

// resourceUpdated forwards resources/updated to the subscribed client.
func (mc *memberConn) resourceUpdated(p *mcp.ResourceUpdatedNotificationParams) {
	g := mc.set.g
	if owner := mc.set.owner; owner != nil {
		g.relay(context.Background(), owner.ss, "notifications/resources/updated", p)
		return
	}
	_ = g.modern.ResourceUpdated(context.Background(), &mcp.ResourceUpdatedNotificationParams{URI: p.URI, Meta: p.Meta})
}

// send sends a message to a client session as the member sent it, through
// the go-sdk server's own sending path (ctx decides the stream).
func (g *Gateway) send(ctx context.Context, ss *mcp.ServerSession, method string, p mcp.Params) (mcp.Result, error) {
	h := g.sendLegacy.Load()
	if ip := ss.InitializeParams(); ip != nil && ip.ProtocolVersion >= "2026-07-28" {
		h = g.sendModern.Load()
	}
	if h == nil {
		return nil, errors.New("the profile endpoint is not serving")
	}
	var req mcp.Request
	switch p := p.(type) {
	case *mcp.CreateMessageWithToolsParams:
		req = &mcp.ServerRequest[*mcp.CreateMessageWithToolsParams]{Session: ss, Params: p}
	case *mcp.CreateMessageParams:
		req = &mcp.ServerRequest[*mcp.CreateMessageParams]{Session: ss, Params: p}
	case *mcp.ElicitParams:
		req = &mcp.ServerRequest[*mcp.ElicitParams]{Session: ss, Params: p}
	case *mcp.ListRootsParams:
		req = &mcp.ServerRequest[*mcp.ListRootsParams]{Session: ss, Params: p}
	case *mcp.LoggingMessageParams:
		req = &mcp.ServerRequest[*mcp.LoggingMessageParams]{Session: ss, Params: p}
	case *mcp.ProgressNotificationParams:
		req = &mcp.ServerRequest[*mcp.ProgressNotificationParams]{Session: ss, Params: p}
	case *mcp.ToolListChangedParams:
		req = &mcp.ServerRequest[*mcp.ToolListChangedParams]{Session: ss, Params: p}
	case *mcp.PromptListChangedParams:
		req = &mcp.ServerRequest[*mcp.PromptListChangedParams]{Session: ss, Params: p}
	case *mcp.ResourceListChangedParams:
		req = &mcp.ServerRequest[*mcp.ResourceListChangedParams]{Session: ss, Params: p}
	case *mcp.ResourceUpdatedNotificationParams:
		req = &mcp.ServerRequest[*mcp.ResourceUpdatedNotificationParams]{Session: ss, Params: p}
	case *mcp.ElicitationCompleteParams:
		req = &mcp.ServerRequest[*mcp.ElicitationCompleteParams]{Session: ss, Params: p}
	default:
		return nil, fmt.Errorf("cannot relay %s (%T)", method, p)
	}
	return (*h)(ctx, method, req)
}

// relay is send for notifications: failures (the client went away) are
// logged at debug level only.
func (g *Gateway) relay(ctx context.Context, ss *mcp.ServerSession, method string, p mcp.Params) {
	if _, err := g.send(ctx, ss, method, p); err != nil {
		g.log.Debug("could not relay a notification to the client", "method", method, "err", err)
	}
}

// modernChanged tells stateless clients listening for list changes
// (subscriptions/listen) that a list changed, through the go-sdk server's
// own subscription bookkeeping: a feature added and removed at once makes
// it notify the listeners of that kind (debounced), and nothing else.
func (g *Gateway) modernChanged(kinds ...string) {
	if len(kinds) == 0 {
		kinds = []string{"notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed"}
	}
	const marker = "keyport-gateway-list-changed"
	for _, k := range kinds {
		switch k {
		case "notifications/tools/list_changed":
			g.modern.AddTool(&mcp.Tool{Name: marker, InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return nil, errors.New("not a tool")
			})
			g.modern.RemoveTools(marker)
		case "notifications/prompts/list_changed":
			g.modern.AddPrompt(&mcp.Prompt{Name: marker}, func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
				return nil, errors.New("not a prompt")
			})
			g.modern.RemovePrompts(marker)
		default:
			g.modern.AddResource(&mcp.Resource{Name: marker, URI: "keyport-gateway:changed"}, func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
				return nil, errors.New("not a resource")
			})
			g.modern.RemoveResources("keyport-gateway:changed")
		}
	}
}

// profileKey carries the profile's name to the member transport.
type profileKey struct{}

func withProfile(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, profileKey{}, name)
}

// callKey carries the call a member request belongs to.
type callKey struct{}

// ProfileHeader names the profile (and, for a tools/call, the tool as the
// client called it and what the profile changed about it) on every request
// a member's proxy gets from the gateway, so its audit log records that the
// request came through a profile. The proxy removes it before the server.
const ProfileHeader = "Keyport-Profile"

// memberTransport adds what a member's proxy must see of the client's
// request: the profile header, and the client's own Mcp-Param-* headers
// (the member checks them against the body, as it would for a direct
// client).
type memberTransport struct {
	g    *Gateway
	base http.RoundTripper
}

func (t *memberTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	v := t.g.config().Name
	if c, ok := r.Context().Value(callKey{}).(*call); ok && c.exposed != "" {
		v += "; tool=" + c.exposed
		if len(c.overrides) > 0 {
			v += "; overrides=" + strings.Join(c.overrides, ",")
		}
		if c.header != nil {
			for k := range r.Header {
				if strings.HasPrefix(k, "Mcp-Param-") {
					r.Header.Del(k)
				}
			}
			for k, vs := range c.header {
				if strings.HasPrefix(http.CanonicalHeaderKey(k), "Mcp-Param-") {
					r.Header[http.CanonicalHeaderKey(k)] = vs
				}
			}
		}
	}
	r.Header.Set(ProfileHeader, v)
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout {
		// The member's proxy says why the server is unavailable (down,
		// signed out) in a JSON-RPC error; go-sdk drops the body of these
		// statuses, so the gateway passes it as a plain failure, and keeps
		// the reason for the member's status.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if mc, ok := r.Context().Value(memberKey{}).(*memberConn); ok {
			var e struct {
				Error struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
				mc.setRefusal(e.Error.Message)
			}
		}
		resp.StatusCode, resp.Status = http.StatusInternalServerError, "500 Internal Server Error"
	}
	if c, ok := r.Context().Value(callKey{}).(*call); ok && !c.passed && r.Method == http.MethodPost &&
		strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body = newCallStream(t.g, c, resp.Body)
	}
	return resp, nil
}

// notifyRootsChanged tells the member that the client's roots changed.
func (mc *memberConn) notifyRootsChanged(ctx context.Context) {
	cs, h := mc.current(), mc.clientSend.Load()
	if cs == nil || h == nil {
		return
	}
	req := &mcp.ClientRequest[*mcp.RootsListChangedParams]{Session: cs, Params: &mcp.RootsListChangedParams{}}
	if _, err := (*h)(ctx, "notifications/roots/list_changed", req); err != nil {
		mc.set.g.log.Debug("could not tell a member the roots changed", "server", mc.member().Server, "err", err)
	}
}

// memberKey carries the member connection a request is made for.
type memberKey struct{}

func (mc *memberConn) setRefusal(msg string) {
	mc.mu.Lock()
	mc.refusal = msg
	mc.mu.Unlock()
}

// takeRefusal is (and forgets) what the member's proxy last said when it
// refused a request.
func (mc *memberConn) takeRefusal() string {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	msg := mc.refusal
	mc.refusal = ""
	return msg
}
