// Package clientcfg reads, edits and watches the MCP configuration files of
// AI clients (Claude Desktop, Cursor, Claude Code, VS Code, Windsurf, Gemini
// CLI) without ever corrupting them.
//
// The package has four parts:
//
//   - The client table (Clients, Lookup): per client its config files on every
//     OS and install variant, the key that holds the servers and the entry
//     shapes it understands. Adding a client is adding a row.
//   - Targets: a client plus one concrete file (user scope, project scope, or
//     any path; see ParseClientConfig).
//   - The Editor: Status, Install, Remove, Sync, Preview and Undo on a Target.
//     It parses JSONC with github.com/tailscale/hujson and splices only the
//     bytes of Keyport's own entries (keys "keyport-<server>"): comments,
//     trailing commas, key order, indentation, unknown keys, CRLF line endings
//     and a UTF-8 BOM stay exactly as they were. Every write is checked before
//     it happens (the new text must parse and keep every other member byte for
//     byte), locked against other Keyport processes, re-read under the lock,
//     compared-and-swapped against outside writers, written atomically through
//     symlinks with the file's mode kept, and backed up (last five versions).
//   - The Watcher: fsnotify on parent directories (or the nearest existing
//     ancestor), debounced, reporting when the servers section of a file
//     changes from outside Keyport.
//
// Which entries are Keyport's: a member whose key starts with "keyport-" and
// whose value points at Keyport — a stdio command whose program is named
// keyport (or keyport.exe) run with "connect", or a remote URL on a loopback
// host. A "keyport-*" key that points elsewhere is foreign: Keyport reports it
// and never rewrites it.
package clientcfg
