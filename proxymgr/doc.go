// Package proxymgr runs Keyport's local MCP proxies: one transparent
// streamable-HTTP reverse proxy per remote MCP server on 127.0.0.1, and the
// Manager that starts, supervises and stops them.
//
// A Proxy forwards bytes and inspects JSON-RPC on the side (it does not
// terminate MCP sessions), so every protocol feature keeps working: both the
// session-based 2025 protocol (GET streams, DELETE, resumption) and the
// stateless 2026-07-28 one. Methods, status codes, MCP headers and SSE
// events pass unchanged and are flushed at once; ids are forwarded as their
// original bytes. On top of that the proxy
//
//   - injects the server's credentials (Config.Credentials) and strips the
//     client's Authorization; with no usable credential clients get 503 and
//     a JSON-RPC error saying what to do, never 401;
//   - serves loopback clients only: Host and Origin checks against DNS
//     rebinding, an optional local access token, a body size limit;
//   - enforces the tool policy (package policy) on tools/list results and
//     tools/call requests, and rejects messages with case-variant duplicate
//     keys so it and the server can never read a request differently;
//   - removes every credential it injected (and the local token) from
//     everything it sends clients — the server's JSON and event streams,
//     error pages it quotes — as the bytes pass (package redact);
//   - writes the audit log (package audit);
//   - re-initializes an upstream that restarted and forgot a session, behind
//     the client's back, and answers -32603 "NAME unreachable: why" while the
//     upstream is down;
//   - reports Status (state, counters, latency) for the UI.
package proxymgr
