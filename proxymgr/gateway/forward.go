package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// JSON-RPC error codes the gateway answers with itself.
const (
	codeInvalidParams = jsonrpc.CodeInvalidParams
	codeInternalError = jsonrpc.CodeInternalError
)

// call is one client request forwarded to a member: what messages the
// member sends meanwhile relate to.
type call struct {
	ctx       context.Context // the client request's handler context: its stream
	ss        *mcp.ServerSession
	exposed   string   // the tool as the client called it
	overrides []string // what the profile changed about it: rename, description
	header    http.Header
	token     any  // the client's progress token
	passed    bool // a tools/call passed as bytes (passthrough.go)

	// closeStream closes the client's stream of this request, telling it
	// to come back after a pause (the member did so: SEP-1699 polling).
	closeStream func(mcp.CloseSSEStreamArgs)
}

// forward answers one client request (the receiving middleware of both
// go-sdk servers): list requests are merged from the members, named
// requests routed to their member; the lifecycle is the go-sdk server's.
func (g *Gateway) forward(ctx context.Context, method string, req mcp.Request, next mcp.MethodHandler, modern bool) (mcp.Result, error) {
	ss, _ := req.GetSession().(*mcp.ServerSession)
	switch method {
	case "initialize":
		return g.initialize(ctx, method, req, next)
	case "notifications/initialized":
		if c := g.session(ss); c != nil {
			c.mu.Lock()
			c.initialized = true
			c.mu.Unlock()
		}
		return next(ctx, method, req)
	case "server/discover":
		res, err := next(ctx, method, req)
		if r, ok := res.(*mcp.DiscoverResult); ok && err == nil {
			actx, cancel := context.WithTimeout(ctx, g.config().ConnectTimeout)
			g.pool.await(actx)
			cancel()
			r.Capabilities = g.pool.capabilities()
			r.Instructions = g.pool.instructions()
		}
		return res, err
	case "tools/list":
		return g.setFor(ss).listTools(ctx, req.GetParams().(*mcp.ListToolsParams))
	case "tools/call":
		return g.callTool(ctx, ss, req.(*mcp.CallToolRequest))
	case "prompts/list":
		return g.setFor(ss).listPrompts(ctx, req.GetParams().(*mcp.ListPromptsParams))
	case "prompts/get":
		return g.getPrompt(ctx, ss, req.GetParams().(*mcp.GetPromptParams))
	case "resources/list":
		return g.setFor(ss).listResources(ctx, req.GetParams().(*mcp.ListResourcesParams))
	case "resources/templates/list":
		return g.setFor(ss).listTemplates(ctx, req.GetParams().(*mcp.ListResourceTemplatesParams))
	case "resources/read":
		return g.readResource(ctx, ss, req.GetParams().(*mcp.ReadResourceParams))
	case "completion/complete":
		return g.complete(ctx, ss, req.GetParams().(*mcp.CompleteParams))
	case "notifications/cancelled":
		if c := g.session(ss); c != nil {
			p, _ := req.GetParams().(*mcp.CancelledParams)
			c.cancelPassed(p) // a passed tool call is cancelled at its member
		}
		return next(ctx, method, req)
	case "logging/setLevel":
		g.setLevel(ctx, ss, req.GetParams().(*mcp.SetLoggingLevelParams))
		return next(ctx, method, req)
	}
	return next(ctx, method, req)
}

// initialize starts a client session: its member sessions connect (for at
// most ConnectTimeout), and the answer advertises what they serve.
func (g *Gateway) initialize(ctx context.Context, method string, req mcp.Request, next mcp.MethodHandler) (mcp.Result, error) {
	ss, _ := req.GetSession().(*mcp.ServerSession)
	p, _ := req.GetParams().(*mcp.InitializeParams)
	if ss == nil || p == nil || g.session(ss) != nil {
		return next(ctx, method, req) // the go-sdk server refuses it
	}
	c := g.newClientSession(ss, p)
	actx, cancel := context.WithTimeout(ctx, g.config().ConnectTimeout)
	c.set.await(actx)
	cancel()
	res, err := next(ctx, method, req)
	if err != nil {
		c.close()
		return res, err
	}
	if r, ok := res.(*mcp.InitializeResult); ok {
		r.Capabilities = c.set.capabilities()
		r.Instructions = c.set.instructions()
	}
	return res, nil
}

// capabilities is the union of what the members serve; before any member
// answered, what they served last time (or everything).
func (s *memberSet) capabilities() *mcp.ServerCapabilities {
	caps := &mcp.ServerCapabilities{}
	known := false
	for _, mc := range s.members() {
		cs := mc.current()
		if cs == nil || cs.InitializeResult() == nil || cs.InitializeResult().Capabilities == nil {
			continue
		}
		known = true
		mcaps := cs.InitializeResult().Capabilities
		if mcaps.Tools != nil {
			caps.Tools = &mcp.ToolCapabilities{ListChanged: true}
		}
		if mcaps.Prompts != nil {
			caps.Prompts = &mcp.PromptCapabilities{ListChanged: true}
		}
		if mcaps.Resources != nil {
			sub := mcaps.Resources.Subscribe || (caps.Resources != nil && caps.Resources.Subscribe)
			caps.Resources = &mcp.ResourceCapabilities{ListChanged: true, Subscribe: sub}
		}
		if mcaps.Logging != nil {
			caps.Logging = &mcp.LoggingCapabilities{}
		}
		if mcaps.Completions != nil {
			caps.Completions = &mcp.CompletionCapabilities{}
		}
	}
	g := s.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if !known {
		if g.lastCaps != nil {
			return g.lastCaps
		}
		return fullCaps()
	}
	// A profile can always tell its client that its lists changed.
	if caps.Tools == nil {
		caps.Tools = &mcp.ToolCapabilities{ListChanged: true}
	}
	g.lastCaps = caps
	return caps
}

// instructions are the members' instructions, each under its server's name
// (a lone member's as they are).
func (s *memberSet) instructions() string {
	var parts []string
	var only string
	members := s.members()
	for _, mc := range members {
		cs := mc.current()
		if cs == nil || cs.InitializeResult() == nil || cs.InitializeResult().Instructions == "" {
			continue
		}
		only = cs.InitializeResult().Instructions
		parts = append(parts, mc.member().Server+": "+only)
	}
	if len(members) == 1 {
		return only
	}
	return strings.Join(parts, "\n\n")
}

// current is the member session if there is one, without starting it.
func (mc *memberConn) current() *mcp.ClientSession {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	return mc.cs
}

// metaFor is the client's _meta as a member gets it: a 2025-era member
// must not see the per-request keys of the 2026 era (it would take the
// request for a stateless one).
func metaFor(cs *mcp.ClientSession, m mcp.Meta) mcp.Meta {
	if len(m) == 0 {
		return nil
	}
	out := make(mcp.Meta, len(m))
	modern := modernSession(cs)
	for k, v := range m {
		if !modern && strings.HasPrefix(k, "io.modelcontextprotocol/") {
			continue
		}
		out[k] = v
	}
	return out
}

// memberError is what the client gets when a member request fails. The
// member's own JSON-RPC answer passes as it is (a policy denial, an unknown
// resource, a tool's error). When the member could not be reached, or its
// proxy says the server is unavailable or signed out (-32603), the client
// gets -32603 naming the member, and the gateway drops that member session
// and reconnects (the member's tools drop out meanwhile).
func (g *Gateway) memberError(ctx context.Context, mc *memberConn, cs *mcp.ClientSession, err error) error {
	answer, rejected := classify(err)
	if answer != nil && (!rejected || answer.Code != codeInternalError) {
		return answer
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	why := unavailable(err)
	if answer != nil {
		why = errors.New(answer.Message)
	}
	mc.failed(cs, why)
	return g.unavailableError(mc, why)
}

// classify finds in err the JSON-RPC error the member (or its proxy)
// answered, if any, and whether the request was refused at the transport
// (an HTTP error status, no connection): go-sdk's local codes -32003 to
// -32005 mark those.
func classify(err error) (answer *jsonrpc.Error, rejected bool) {
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if w, ok := e.(*jsonrpc.Error); ok {
			if w.Code >= -32005 && w.Code <= -32003 {
				rejected = true
			} else if answer == nil {
				answer = w
			}
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	if answer == nil && !rejected {
		rejected = true // no answer at all: the member was not reached
	}
	return answer, rejected
}

func (g *Gateway) unavailableError(mc *memberConn, why error) error {
	return &jsonrpc.Error{Code: codeInternalError, Message: fmt.Sprintf("profile %s: server %s is unavailable: %v", g.config().Name, mc.member().Server, why)}
}

// callTool routes a tools/call to the member that owns the name, under the
// member's own tool name.
func (g *Gateway) callTool(ctx context.Context, ss *mcp.ServerSession, req *mcp.CallToolRequest) (mcp.Result, error) {
	set := g.setFor(ss)
	p := req.Params
	rt, ok := set.tool(p.Name)
	if !ok {
		// A client may call a tool it knows without listing first.
		if _, err := set.listTools(ctx, &mcp.ListToolsParams{}); err == nil {
			rt, ok = set.tool(p.Name)
		}
	}
	if !ok {
		return nil, &jsonrpc.Error{Code: codeInvalidParams, Message: fmt.Sprintf("unknown tool %q", p.Name)}
	}
	cs, err := rt.mc.session()
	if err != nil {
		return nil, g.unavailableError(rt.mc, err)
	}
	c := &call{ctx: ctx, ss: ss, exposed: p.Name, overrides: rt.overrides}
	if ex := req.GetExtra(); ex != nil {
		c.closeStream = ex.CloseSSEStream
		if ex.Header.Get("Mcp-Protocol-Version") >= "2026-07-28" {
			c.header = ex.Header
		}
	}
	params := &mcp.CallToolParams{Name: rt.name, InputResponses: p.InputResponses, RequestState: p.RequestState}
	if len(p.Arguments) > 0 {
		params.Arguments = p.Arguments
	}
	params.Meta = g.trackCall(c, cs, p.Meta)
	defer g.untrackCall(params.Meta)
	defer rt.mc.track(c)()
	res, err := cs.CallTool(context.WithValue(ctx, callKey{}, c), params)
	if err != nil {
		return nil, g.memberError(ctx, rt.mc, cs, err)
	}
	return res, nil
}

// trackCall is the _meta a member gets for c's request: the client's, with
// its progress token replaced by one unique to the gateway, through which
// the member's progress finds its way back to c.
func (g *Gateway) trackCall(c *call, cs *mcp.ClientSession, m mcp.Meta) mcp.Meta {
	meta := metaFor(cs, m)
	if tok, ok := meta["progressToken"]; ok && tok != nil {
		key := "keyport-" + strconv.FormatInt(g.tokens.Add(1), 36)
		c.token = tok
		meta["progressToken"] = key
		g.mu.Lock()
		g.progress[key] = c
		g.mu.Unlock()
	}
	return meta
}

func (g *Gateway) untrackCall(m mcp.Meta) {
	if key, ok := m["progressToken"].(string); ok {
		g.mu.Lock()
		delete(g.progress, key)
		g.mu.Unlock()
	}
}

// relayProgress sends a member's progress to the call it belongs to, with
// the client's own token.
func (g *Gateway) relayProgress(p *mcp.ProgressNotificationParams) {
	key, _ := p.ProgressToken.(string)
	g.mu.Lock()
	c := g.progress[key]
	g.mu.Unlock()
	if c == nil {
		return
	}
	q := *p
	q.ProgressToken = c.token
	g.relay(c.ctx, c.ss, "notifications/progress", &q)
}

// getPrompt routes prompts/get to the member that owns the prompt.
func (g *Gateway) getPrompt(ctx context.Context, ss *mcp.ServerSession, p *mcp.GetPromptParams) (mcp.Result, error) {
	set := g.setFor(ss)
	rt, ok := set.prompt(p.Name)
	if !ok {
		if _, err := set.listPrompts(ctx, &mcp.ListPromptsParams{}); err == nil {
			rt, ok = set.prompt(p.Name)
		}
	}
	if !ok {
		return nil, &jsonrpc.Error{Code: codeInvalidParams, Message: fmt.Sprintf("unknown prompt %q", p.Name)}
	}
	cs, err := rt.mc.session()
	if err != nil {
		return nil, g.unavailableError(rt.mc, err)
	}
	c := &call{ctx: ctx, ss: ss}
	q := *p
	q.Name = rt.name
	q.Meta = g.trackCall(c, cs, p.Meta)
	defer g.untrackCall(q.Meta)
	defer rt.mc.track(c)()
	res, err := cs.GetPrompt(context.WithValue(ctx, callKey{}, c), &q)
	if err != nil {
		return nil, g.memberError(ctx, rt.mc, cs, err)
	}
	return res, nil
}

// readResource routes resources/read by URI: to the member that listed it
// or whose template matches it; failing that, it asks the members in turn
// and answers with the first that has it.
func (g *Gateway) readResource(ctx context.Context, ss *mcp.ServerSession, p *mcp.ReadResourceParams) (mcp.Result, error) {
	set := g.setFor(ss)
	var firstErr error
	for _, mc := range set.candidatesFor(ctx, p.URI) {
		cs, err := mc.session()
		if err != nil {
			if firstErr == nil {
				firstErr = g.unavailableError(mc, err)
			}
			continue
		}
		c := &call{ctx: ctx, ss: ss}
		q := *p
		q.Meta = g.trackCall(c, cs, p.Meta)
		untrack := mc.track(c)
		res, err := cs.ReadResource(context.WithValue(ctx, callKey{}, c), &q)
		untrack()
		g.untrackCall(q.Meta)
		if err == nil {
			return res, nil
		}
		err = g.memberError(ctx, mc, cs, err)
		if firstErr == nil {
			firstErr = err
		}
		if !notFound(err) {
			return nil, err
		}
	}
	if firstErr == nil {
		firstErr = mcp.ResourceNotFoundError(p.URI)
	}
	return nil, firstErr
}

// notFound reports whether err says a resource does not exist (so another
// member may have it).
func notFound(err error) bool {
	var je *jsonrpc.Error
	return errors.As(err, &je) && (je.Code == mcp.CodeResourceNotFound || je.Code == -32002 ||
		strings.Contains(strings.ToLower(je.Message), "not found"))
}

// complete routes completion/complete by its reference: a prompt's name,
// or a resource template.
func (g *Gateway) complete(ctx context.Context, ss *mcp.ServerSession, p *mcp.CompleteParams) (mcp.Result, error) {
	set := g.setFor(ss)
	q := *p
	var mc *memberConn
	if p.Ref != nil {
		ref := *p.Ref
		switch ref.Type {
		case "ref/prompt":
			rt, ok := set.prompt(ref.Name)
			if !ok {
				if _, err := set.listPrompts(ctx, &mcp.ListPromptsParams{}); err == nil {
					rt, ok = set.prompt(ref.Name)
				}
			}
			if !ok {
				return nil, &jsonrpc.Error{Code: codeInvalidParams, Message: fmt.Sprintf("unknown prompt %q", ref.Name)}
			}
			mc, ref.Name = rt.mc, rt.name
		case "ref/resource":
			if cands := set.candidatesFor(ctx, ref.URI); len(cands) > 0 {
				mc = cands[0]
			}
		}
		q.Ref = &ref
	}
	if mc == nil {
		for _, m := range set.members() {
			if cs := m.current(); cs != nil && cs.InitializeResult().Capabilities != nil && cs.InitializeResult().Capabilities.Completions != nil {
				mc = m
				break
			}
		}
	}
	if mc == nil {
		return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{}}}, nil
	}
	cs, err := mc.session()
	if err != nil {
		return nil, g.unavailableError(mc, err)
	}
	q.Meta = metaFor(cs, p.Meta)
	res, err := cs.Complete(ctx, &q)
	if err != nil {
		return nil, g.memberError(ctx, mc, cs, err)
	}
	return res, nil
}

// setLevel forwards logging/setLevel to every member (2025 era) and keeps
// the level for members that reconnect.
func (g *Gateway) setLevel(ctx context.Context, ss *mcp.ServerSession, p *mcp.SetLoggingLevelParams) {
	c := g.session(ss)
	if c == nil {
		return
	}
	c.mu.Lock()
	c.logLevel = p.Level
	c.mu.Unlock()
	for _, mc := range c.set.members() {
		cs := mc.current()
		if cs == nil || modernSession(cs) || cs.InitializeResult().Capabilities == nil || cs.InitializeResult().Capabilities.Logging == nil {
			continue
		}
		if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: p.Level}); err != nil {
			g.log.Debug("logging/setLevel to a member failed", "server", mc.member().Server, "err", err)
		}
	}
}

// subscribe is the go-sdk servers' SubscribeHandler: a 2025 client's
// resources/subscribe, or a resource of a stateless client's
// subscriptions/listen; either is forwarded to the member that owns the URI.
func (g *Gateway) subscribe(ctx context.Context, req *mcp.SubscribeRequest) error {
	uri := req.Params.URI
	if c := g.session(req.Session); c != nil {
		mc := c.set.routeURI(uri)
		if mc == nil {
			cands := c.set.candidatesFor(ctx, uri)
			if len(cands) == 0 {
				return mcp.ResourceNotFoundError(uri)
			}
			mc = cands[0]
		}
		cs, err := mc.session()
		if err != nil {
			return g.unavailableError(mc, err)
		}
		q := *req.Params
		q.Meta = metaFor(cs, req.Params.Meta)
		if err := cs.Subscribe(ctx, &q); err != nil {
			return g.memberError(ctx, mc, cs, err)
		}
		c.mu.Lock()
		c.subs[uri] = true
		c.mu.Unlock()
		return nil
	}
	return g.pool.subscribePool(ctx, uri)
}

func (g *Gateway) unsubscribe(ctx context.Context, req *mcp.UnsubscribeRequest) error {
	uri := req.Params.URI
	if c := g.session(req.Session); c != nil {
		c.mu.Lock()
		delete(c.subs, uri)
		c.mu.Unlock()
		mc := c.set.routeURI(uri)
		if mc == nil {
			return nil
		}
		cs, err := mc.session()
		if err != nil {
			return nil // gone with its session
		}
		if err := cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: uri}); err != nil {
			return g.memberError(ctx, mc, cs, err)
		}
		return nil
	}
	g.pool.unsubscribePool(uri)
	return nil
}

// rootsChanged tells every member of the session that the client's roots
// changed (they ask for them again, and the client answers).
func (g *Gateway) rootsChanged(ctx context.Context, ss *mcp.ServerSession) {
	c := g.session(ss)
	if c == nil {
		return
	}
	for _, mc := range c.set.members() {
		mc.notifyRootsChanged(ctx)
	}
}
