// Package catalog is Keyport's list of MCP servers: servers.yaml in the
// config dir (see ConfigDir), its validation, comment-preserving edits, and
// live reload.
//
// Load it with NewFile(path).Load (or Parse for bytes); every problem is
// reported at once as a *LoadError whose lines read
// "servers.yaml:12: servers[1].url: ...". Server.Check validates one entry
// and fills its defaults.
//
// File.Add, File.Update and File.Remove rewrite the file through its YAML
// node tree, so the user's comments, key order and quoting survive; the
// write is atomic (temp file, fsync, rename), done under a cross-process
// lock (gofrs/flock), and refused when the current file does not parse.
//
// File.Watch follows the file with fsnotify on its directory (rename-over
// saves, delete and re-create, a re-created config dir, a symlinked file)
// and sends an Update with the new catalog and a Diff, or with the error
// while keeping the last good catalog.
//
// Secrets never appear in servers.yaml: auth names the kind of credential,
// and the values live in the OS keychain (app/secrets).
//
// Subpackages: registry imports servers from an MCP Registry; demo is the
// built-in demo server.
package catalog
