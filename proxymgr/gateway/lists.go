package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/yosida95/uritemplate/v3"
)

// route is where a name the client sees goes.
type route struct {
	mc        *memberConn
	name      string   // the member's own name
	overrides []string // tools: what the profile changed (rename, description)
}

// routes are what the last lists told the gateway, per member set.
type routes struct {
	tools, prompts map[string]route
	resources      map[string]*memberConn // URI -> member
	templates      []templateRoute
}

type templateRoute struct {
	uriTemplate string
	re          interface{ MatchString(string) bool }
	mc          *memberConn
}

func (s *memberSet) tool(name string) (route, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.routes.tools[name]
	return r, ok
}

func (s *memberSet) prompt(name string) (route, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.routes.prompts[name]
	return r, ok
}

// routeURI is the member that listed uri, or whose template matches it.
func (s *memberSet) routeURI(uri string) *memberConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mc := s.routes.resources[uri]; mc != nil {
		return mc
	}
	for _, t := range s.routes.templates {
		if t.uriTemplate == uri || t.re.MatchString(uri) {
			return t.mc
		}
	}
	return nil
}

// candidatesFor are the members to ask about uri, in order: the one that
// owns it, else (after listing once) every member serving resources.
func (s *memberSet) candidatesFor(ctx context.Context, uri string) []*memberConn {
	if mc := s.routeURI(uri); mc != nil {
		return []*memberConn{mc}
	}
	s.mu.Lock()
	listed := s.routes.resources != nil
	s.mu.Unlock()
	if !listed {
		_, _ = s.listResources(ctx, &mcp.ListResourcesParams{})
		_, _ = s.listTemplates(ctx, &mcp.ListResourceTemplatesParams{})
		if mc := s.routeURI(uri); mc != nil {
			return []*memberConn{mc}
		}
	}
	members := s.members()
	var out []*memberConn
	for _, mc := range members {
		cs := mc.current()
		if cs != nil && cs.InitializeResult() != nil && cs.InitializeResult().Capabilities != nil && cs.InitializeResult().Capabilities.Resources == nil {
			continue
		}
		out = append(out, mc)
	}
	return out
}

// listing is one member's answer to a list request.
type listing[T any] struct {
	mc    *memberConn
	items []T
	cache mcp.Cacheable
	ok    bool
}

// maxPages bounds how many pages of one member's list are followed.
const maxPages = 100

// fanOut asks every member that is up and serves the feature for its whole
// list (following its pages), in parallel, each for at most ListTimeout.
// A member that misses the deadline is left out (markSlow); one that cannot
// be reached is reconnected.
func fanOut[T any](ctx context.Context, s *memberSet, serves func(*mcp.ServerCapabilities) bool,
	page func(ctx context.Context, mc *memberConn, cs *mcp.ClientSession, cursor string) ([]T, string, mcp.Cacheable, error)) []listing[T] {
	members := s.members()
	out := make([]listing[T], len(members))
	timeout := s.g.config().ListTimeout
	var wg sync.WaitGroup
	for i, mc := range members {
		out[i].mc = mc
		mc.ensure()
		wg.Go(func() {
			lctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			select { // a member still making its first connection attempt
			case <-mc.ready:
			case <-lctx.Done():
				return
			}
			mc.mu.Lock()
			cs, slow := mc.cs, mc.slow
			mc.mu.Unlock()
			if cs == nil || slow {
				return
			}
			if r := cs.InitializeResult(); r == nil || r.Capabilities == nil || !serves(r.Capabilities) {
				return
			}
			var items []T
			cursor := ""
			for range maxPages {
				got, nextCursor, cache, err := page(lctx, mc, cs, cursor)
				if err != nil {
					var je *jsonrpc.Error
					switch {
					case errors.As(err, &je):
						s.g.log.Debug("a member refused a list request", "server", mc.member().Server, "err", err)
					case ctx.Err() != nil:
					case errors.Is(lctx.Err(), context.DeadlineExceeded):
						mc.markSlow(cs)
					default:
						mc.failed(cs, unavailable(err))
					}
					return
				}
				items = append(items, got...)
				if cursor == "" {
					out[i].cache = cache
				} else {
					out[i].cache = mergeCache(out[i].cache, cache)
				}
				if nextCursor == "" || nextCursor == cursor {
					break
				}
				cursor = nextCursor
			}
			out[i].items, out[i].ok = items, true
		})
	}
	wg.Wait()
	return out
}

// mergeCache is the cache hint of a list merged from two: the shorter TTL,
// and private if either is.
func mergeCache(a, b mcp.Cacheable) mcp.Cacheable {
	out := a
	if b.TTLMs < out.TTLMs {
		out.TTLMs = b.TTLMs
	}
	if b.CacheScope == "private" {
		out.CacheScope = "private"
	}
	return out
}

// mergedCache merges the hints of every member that answered.
func mergedCache[T any](ls []listing[T]) mcp.Cacheable {
	var out mcp.Cacheable
	first := true
	for _, l := range ls {
		if !l.ok {
			continue
		}
		if first {
			out, first = l.cache, false
			continue
		}
		out = mergeCache(out, l.cache)
	}
	return out
}

// servers are the members' server names, for prefixes.
func servers[T any](ls []listing[T]) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.mc.member().Server
	}
	return out
}

// noCursor refuses a cursor: the gateway answers every list in one page
// (it follows the members' pages itself).
func noCursor(cursor string) error {
	if cursor == "" {
		return nil
	}
	return &jsonrpc.Error{Code: codeInvalidParams, Message: fmt.Sprintf("invalid cursor %q: this profile answers lists in one page", cursor)}
}

func (s *memberSet) listTools(ctx context.Context, p *mcp.ListToolsParams) (*mcp.ListToolsResult, error) {
	if p == nil {
		p = &mcp.ListToolsParams{}
	}
	if err := noCursor(p.Cursor); err != nil {
		return nil, err
	}
	ls := fanOut(ctx, s, func(c *mcp.ServerCapabilities) bool { return c.Tools != nil },
		func(ctx context.Context, mc *memberConn, cs *mcp.ClientSession, cursor string) ([]*mcp.Tool, string, mcp.Cacheable, error) {
			if cursor == "" {
				if tools, cache, ok := mc.cachedTools(cs); ok {
					return tools, "", cache, nil
				}
			}
			r, err := cs.ListTools(ctx, &mcp.ListToolsParams{Meta: metaFor(cs, p.Meta), Cursor: cursor})
			if err != nil {
				return nil, "", mcp.Cacheable{}, err
			}
			return r.Tools, r.NextCursor, r.Cacheable, nil
		})
	for _, l := range ls {
		if l.ok && s.owner != nil {
			l.mc.cacheTools(l.items, l.cache)
		}
	}
	var items []item
	var src []*mcp.Tool
	var descs []string
	for i, l := range ls {
		m := l.mc.member()
		for _, t := range l.items {
			if t == nil || (m.Tools != nil && !contains(m.Tools, t.Name)) {
				continue
			}
			o := m.Overrides[t.Name]
			items = append(items, item{member: i, name: t.Name, rename: o.Name})
			src = append(src, t)
			descs = append(descs, o.Description)
		}
	}
	names := assignNames(servers(ls), items, s.g.config().PrefixAlways)
	tools := make([]*mcp.Tool, 0, len(names))
	rts := make(map[string]route, len(names))
	for i, a := range names {
		if a.exposed == "" {
			s.g.log.Warn("a tool is left out of the profile", "server", ls[a.member].mc.member().Server, "tool", a.name, "why", a.dropped)
			continue
		}
		t := *src[i]
		var ov []string
		if a.rename != "" {
			ov = append(ov, "rename")
		}
		if descs[i] != "" {
			t.Description = descs[i]
			ov = append(ov, "description")
		}
		t.Name = a.exposed
		tools = append(tools, &t)
		rts[a.exposed] = route{mc: ls[a.member].mc, name: a.name, overrides: ov}
	}
	s.mu.Lock()
	s.routes.tools = rts
	s.mu.Unlock()
	if s.owner == nil {
		s.g.mirrorHeaderTools(tools)
	}
	return &mcp.ListToolsResult{Tools: tools, Cacheable: mergedCache(ls)}, nil
}

func (s *memberSet) listPrompts(ctx context.Context, p *mcp.ListPromptsParams) (*mcp.ListPromptsResult, error) {
	if p == nil {
		p = &mcp.ListPromptsParams{}
	}
	if err := noCursor(p.Cursor); err != nil {
		return nil, err
	}
	ls := fanOut(ctx, s, func(c *mcp.ServerCapabilities) bool { return c.Prompts != nil },
		func(ctx context.Context, _ *memberConn, cs *mcp.ClientSession, cursor string) ([]*mcp.Prompt, string, mcp.Cacheable, error) {
			r, err := cs.ListPrompts(ctx, &mcp.ListPromptsParams{Meta: metaFor(cs, p.Meta), Cursor: cursor})
			if err != nil {
				return nil, "", mcp.Cacheable{}, err
			}
			return r.Prompts, r.NextCursor, r.Cacheable, nil
		})
	var items []item
	var src []*mcp.Prompt
	for i, l := range ls {
		for _, pr := range l.items {
			if pr != nil {
				items = append(items, item{member: i, name: pr.Name})
				src = append(src, pr)
			}
		}
	}
	names := assignNames(servers(ls), items, s.g.config().PrefixAlways)
	prompts := make([]*mcp.Prompt, 0, len(names))
	rts := make(map[string]route, len(names))
	for i, a := range names {
		if a.exposed == "" {
			continue
		}
		pr := *src[i]
		pr.Name = a.exposed
		prompts = append(prompts, &pr)
		rts[a.exposed] = route{mc: ls[a.member].mc, name: a.name}
	}
	s.mu.Lock()
	s.routes.prompts = rts
	s.mu.Unlock()
	return &mcp.ListPromptsResult{Prompts: prompts, Cacheable: mergedCache(ls)}, nil
}

func (s *memberSet) listResources(ctx context.Context, p *mcp.ListResourcesParams) (*mcp.ListResourcesResult, error) {
	if p == nil {
		p = &mcp.ListResourcesParams{}
	}
	if err := noCursor(p.Cursor); err != nil {
		return nil, err
	}
	ls := fanOut(ctx, s, func(c *mcp.ServerCapabilities) bool { return c.Resources != nil },
		func(ctx context.Context, _ *memberConn, cs *mcp.ClientSession, cursor string) ([]*mcp.Resource, string, mcp.Cacheable, error) {
			r, err := cs.ListResources(ctx, &mcp.ListResourcesParams{Meta: metaFor(cs, p.Meta), Cursor: cursor})
			if err != nil {
				return nil, "", mcp.Cacheable{}, err
			}
			return r.Resources, r.NextCursor, r.Cacheable, nil
		})
	out := []*mcp.Resource{}
	owners := map[string]*memberConn{}
	for _, l := range ls {
		for _, r := range l.items {
			if r == nil {
				continue
			}
			if _, dup := owners[r.URI]; dup {
				continue // URIs are the servers' own: the first member keeps it
			}
			owners[r.URI] = l.mc
			out = append(out, r)
		}
	}
	s.mu.Lock()
	s.routes.resources = owners
	s.mu.Unlock()
	return &mcp.ListResourcesResult{Resources: out, Cacheable: mergedCache(ls)}, nil
}

func (s *memberSet) listTemplates(ctx context.Context, p *mcp.ListResourceTemplatesParams) (*mcp.ListResourceTemplatesResult, error) {
	if p == nil {
		p = &mcp.ListResourceTemplatesParams{}
	}
	if err := noCursor(p.Cursor); err != nil {
		return nil, err
	}
	ls := fanOut(ctx, s, func(c *mcp.ServerCapabilities) bool { return c.Resources != nil },
		func(ctx context.Context, _ *memberConn, cs *mcp.ClientSession, cursor string) ([]*mcp.ResourceTemplate, string, mcp.Cacheable, error) {
			r, err := cs.ListResourceTemplates(ctx, &mcp.ListResourceTemplatesParams{Meta: metaFor(cs, p.Meta), Cursor: cursor})
			if err != nil {
				return nil, "", mcp.Cacheable{}, err
			}
			return r.ResourceTemplates, r.NextCursor, r.Cacheable, nil
		})
	var items []item
	var src []*mcp.ResourceTemplate
	for i, l := range ls {
		for _, t := range l.items {
			if t != nil {
				items = append(items, item{member: i, name: t.Name})
				src = append(src, t)
			}
		}
	}
	names := assignNames(servers(ls), items, s.g.config().PrefixAlways)
	out := make([]*mcp.ResourceTemplate, 0, len(names))
	var trs []templateRoute
	for i, a := range names {
		if a.exposed == "" {
			continue
		}
		t := *src[i]
		t.Name = a.exposed
		out = append(out, &t)
		tmpl, err := uritemplate.New(t.URITemplate)
		if err != nil {
			continue
		}
		trs = append(trs, templateRoute{uriTemplate: t.URITemplate, re: tmpl.Regexp(), mc: ls[a.member].mc})
	}
	s.mu.Lock()
	s.routes.templates = trs
	s.mu.Unlock()
	return &mcp.ListResourceTemplatesResult{ResourceTemplates: out, Cacheable: mergedCache(ls)}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var errNoOwner = errors.New("no server of the profile has this resource")

// subscribePool subscribes the shared member session of uri's member, for
// the first stateless listener of uri.
func (s *memberSet) subscribePool(ctx context.Context, uri string) error {
	s.g.subsMu.Lock()
	if s.g.poolSubs == nil {
		s.g.poolSubs = map[string]int{}
	}
	s.g.poolSubs[uri]++
	first := s.g.poolSubs[uri] == 1
	s.g.subsMu.Unlock()
	if !first {
		return nil
	}
	cands := s.candidatesFor(ctx, uri)
	if len(cands) == 0 {
		return errNoOwner
	}
	mc := cands[0]
	cs, err := mc.session()
	if err != nil {
		return s.g.unavailableError(mc, err)
	}
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: uri}); err != nil {
		return s.g.memberError(ctx, mc, cs, err)
	}
	return nil
}

func (s *memberSet) unsubscribePool(uri string) {
	s.g.subsMu.Lock()
	s.g.poolSubs[uri]--
	last := s.g.poolSubs[uri] <= 0
	if last {
		delete(s.g.poolSubs, uri)
	}
	s.g.subsMu.Unlock()
	if !last {
		return
	}
	if mc := s.routeURI(uri); mc != nil {
		if cs := mc.current(); cs != nil {
			_ = cs.Unsubscribe(context.Background(), &mcp.UnsubscribeParams{URI: uri})
		}
	}
}

// A member session's tool list is kept until the member says it changed
// (list_changed), the session is replaced, or the profile is edited, when
// the member promises to say so (tools.listChanged): a profile's
// tools/list then costs no round trip to the members that did not change,
// and answers faster than its slowest member would.

type toolsCache struct {
	cs    *mcp.ClientSession // the session it was listed on
	tools []*mcp.Tool
	cache mcp.Cacheable
}

// cachedTools is the member's kept tool list for cs, if there is one.
func (mc *memberConn) cachedTools(cs *mcp.ClientSession) ([]*mcp.Tool, mcp.Cacheable, bool) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if c := mc.tools; c != nil && c.cs == cs {
		return c.tools, c.cache, true
	}
	return nil, mcp.Cacheable{}, false
}

// cacheTools keeps a full tool list of the current session, when the
// member promises list_changed.
func (mc *memberConn) cacheTools(tools []*mcp.Tool, cache mcp.Cacheable) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	cs := mc.cs
	if cs == nil || cs.InitializeResult() == nil || cs.InitializeResult().Capabilities == nil ||
		cs.InitializeResult().Capabilities.Tools == nil || !cs.InitializeResult().Capabilities.Tools.ListChanged {
		return
	}
	mc.tools = &toolsCache{cs: cs, tools: tools, cache: cache}
}

// forgetTools drops the kept tool list.
func (mc *memberConn) forgetTools() {
	mc.mu.Lock()
	mc.tools = nil
	mc.mu.Unlock()
}
