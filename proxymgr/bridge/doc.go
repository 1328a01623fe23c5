// Package bridge connects a stdio MCP client (one that can only start a
// subprocess and talk newline-delimited JSON-RPC on its stdin/stdout, such
// as Claude Desktop) to one streamable-HTTP MCP endpoint. It is the engine
// of `keyport connect`.
//
// The bridge is a message-level pump, not an MCP client and server glued
// together: it forwards each JSON-RPC message's exact bytes and looks inside
// only to route (ids, methods, a few params), so every protocol feature
// passes through, including ones newer than this code. Around the pump it
// does what an HTTP client must and a stdio client cannot:
//
//   - the transport headers: Mcp-Session-Id, MCP-Protocol-Version after
//     initialize, and for 2026-07-28 requests the SEP-2243 headers Mcp-Method,
//     Mcp-Name and Mcp-Param-* (from the x-mcp-header annotations of the tools
//     it has seen; tools with invalid annotations are left out of tools/list);
//   - the standalone GET event stream (2025 era) for server-initiated
//     messages, and resumption of broken streams with Last-Event-ID;
//   - cancellation: notifications/cancelled is forwarded (2025 era) or turned
//     into closing the request's stream (2026-07-28);
//   - resilience: it caches the client's initialize exchange; when the
//     server loses the session (HTTP 404 after a restart) it re-initializes,
//     checks the server is still the same (serverInfo and protocol version),
//     restores the log level and resource subscriptions, reopens the GET
//     stream and asks the client to refresh its lists. Requests wait (up to
//     Config.RequestWait) while the server is unreachable. Every request
//     gets exactly one answer: a request that cannot complete is answered
//     with a JSON-RPC -32603 error saying what to do.
//
// The go-sdk's StreamableClientTransport was studied and not used for the
// HTTP side, because a pump needs what it does not offer: it re-encodes
// messages (integer-truncating ids like 1.5), it only sends
// MCP-Protocol-Version, opens the GET stream and adds Mcp-Param-* headers
// when driven by an mcp.ClientSession (through unexported hooks), it drops
// the JSON-RPC error body of 5xx answers (where a local proxy says "sign in
// to NAME"), and a failure permanently breaks its connection without
// answering requests in flight. Its types and servers are used in the
// tests.
//
// Credentials, tool policy and audit are not the bridge's business: they
// live in the Keyport proxy the bridge connects to (or that the app starts
// in-process for it), reached through Config.URL and Config.Header.
package bridge
