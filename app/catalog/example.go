package catalog

// exampleFile is written on first run. Every server is commented out, so the
// catalog starts empty and the app shows its built-in demo server.
const exampleFile = `# Keyport: your remote MCP servers.
#
# Each entry is an MCP server that speaks streamable HTTP. Keyport runs a
# local proxy for it on 127.0.0.1 that adds the server's credentials,
# enforces your tool policy and writes an audit log. Keyport watches this
# file: save it and the app picks the change up within a second.
#
# Secrets never go in this file. They live in your OS keychain; set them with
#   keyport secret set NAME bearer            (for auth type bearer)
#   keyport secret set NAME header/X-API-Key  (for a secret header)
# or add a server with "keyport add" / "keyport registry import", which ask.
#
# Uncomment and edit an example to add a server:
#
# servers:
#   - name: example                 # unique: lowercase letters, digits, dashes
#     description: Example MCP server
#     url: https://mcp.example.com/mcp   # https (http only for localhost)
#     labels: {team: platform, env: prod}
#     headers:                      # non-secret headers
#       X-Client: keyport
#     auth:
#       type: bearer                # none | bearer | headers | oauth
#     tools:
#       allow: ["*"]                # literal, glob (get_*) or ^regex$
#       deny: [delete_*]            # deny wins over allow
#       pinning: hold               # hold | warn | off: a tool that changes is held until you review it
#     audit:
#       params: redacted            # none | redacted | full
#
#   - name: analytics
#     url: https://analytics.example.com/mcp
#     auth:
#       type: headers
#       secret_headers: [X-API-Key] # values in the OS keychain
#
#   - name: notes
#     url: https://notes.example.com/mcp
#     auth:
#       type: oauth                 # sign in with your browser
#       scopes: [notes.read]
#
# Registries to search and import from ("keyport registry search TEXT").
# The official MCP Registry is always included unless you add
#   - {name: official, disabled: true}
#
# registries:
#   - name: company
#     url: https://mcp-registry.example.com
servers: []
`
