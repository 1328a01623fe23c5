// Package gateway serves a Keyport profile: one local MCP endpoint that
// composes several servers, each reached through its own Keyport proxy.
//
// A Gateway is a go-sdk MCP server facing the AI client and, per client
// session, one go-sdk client session per member server. Every member
// session talks to the member's local proxy (its 127.0.0.1 endpoint), so
// the server's credentials, tool policy, request gate, pins, same-user
// check, redaction and audit log all apply exactly once, in that proxy: the
// gateway holds no credential and can only ever see the tools a proxy lets
// through.
//
// What the gateway adds is composition:
//
//   - tools, prompts and resource templates of every member are merged into
//     one list; names are kept when unique and prefixed SERVER_ when they
//     collide (or always, per profile); a profile may narrow a member to a
//     chosen set of tools, rename tools and override their descriptions;
//   - requests are routed to the member that owns the name (tools/call,
//     prompts/get, completion) or the URI (resources/read, subscribe), with
//     the member's own names restored;
//   - everything a member sends back reaches the client that caused it:
//     progress (tokens mapped per request), logging, list_changed (the
//     client re-lists and gets the re-merged list), resources/updated, and
//     the server-to-client requests sampling, elicitation and roots, whose
//     answers go back to the member that asked;
//   - a member that is down, signed out or slow drops out of the lists
//     (list_changed), calls to it fail with -32603 naming it, list requests
//     answer within Config.ListTimeout whatever a member does, and it comes
//     back by itself.
//
// Both protocol eras are served on one endpoint: the 2025 session era
// (initialize, sessions, server-to-client requests) by a stateful go-sdk
// handler with member sessions per client session, and the 2026-07-28
// stateless era (server/discover, per-request _meta, subscriptions/listen,
// input_required results) by a stateless handler over one shared member
// session per member.
package gateway
