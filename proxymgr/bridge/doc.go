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
// The go-sdk transports (v1.8.0) were studied and not used for the pump,
// because it needs what they do not offer:
//
//   - StreamableClientTransport sends MCP-Protocol-Version, opens the GET
//     stream and adds Mcp-Param-* headers only when driven by an
//     mcp.ClientSession (through unexported hooks); it drops the JSON-RPC
//     error body of 5xx answers (where a local proxy says "sign in to
//     NAME"); and any failure permanently breaks its connection without
//     answering the requests in flight.
//   - StdioTransport/IOTransport end the connection at the first line that
//     is not JSON, where a bridge should answer -32700 and go on.
//   - Both go through the jsonrpc package's codec, which re-encodes every
//     message: ids become int64 or string (1.5 turns into 1, 2^53+1 loses
//     precision) and unknown members are dropped.
//
// So the bridge frames and scans messages itself (frame.go, sse.go,
// jsonmsg.go, all fuzzed) and forwards the original bytes. The go-sdk
// clients and servers are what the tests run it against.
//
// Credentials, tool policy and audit are not the bridge's business: they
// live in the Keyport proxy the bridge connects to (or that the app starts
// in-process for it), reached through Config.URL and Config.Header.
package bridge
