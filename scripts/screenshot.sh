#!/usr/bin/env bash
# screenshot.sh BIN OUTDIR
#
# Runs the real Keyport app under Xvfb, in a private session (scripts/session.sh:
# fresh HOME, private D-Bus, gnome-keyring) with the fixture config in
# testdata/screenshot, and lets it write PNGs of its views into OUTDIR.
# The fixture's local-tools server is internal/screenshot-mcp, a go-sdk MCP
# server this script runs on 127.0.0.1:18937 while the app runs.
set -euo pipefail
bin="$1"; out="$2"
here="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$out"
rm -f "$out"/*.png

tmp="$(mktemp -d "${TMPDIR:-/tmp}/keyport-shots.XXXXXX")"
mcp_pid=""
cleanup() {
	if [ -n "$mcp_pid" ]; then kill "$mcp_pid" 2>/dev/null || true; wait "$mcp_pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
(cd "$here" && "${GO:-go}" build -o "$tmp/screenshot-mcp" ./internal/screenshot-mcp)
"$tmp/screenshot-mcp" -addr 127.0.0.1:18937 &
mcp_pid=$!
# Wait until it listens (it exits at once, saying why, if the port is taken).
for _ in $(seq 50); do
	kill -0 "$mcp_pid" 2>/dev/null || { wait "$mcp_pid" || true; echo "screenshot.sh: local-tools' MCP server did not start" >&2; exit 1; }
	(exec 3<>/dev/tcp/127.0.0.1/18937) 2>/dev/null && break
	sleep 0.1
done

export KEYPORT_SCREENSHOTS="$out"
export KEYPORT_FIXTURE="$here/testdata/screenshot"
# The organization's managed settings: a managed server for the "managed" view.
export KEYPORT_MANAGED_FILE="$here/testdata/screenshot-managed.yaml"
"$here/scripts/session.sh" bash -c '
	export KEYPORT_CONFIG_DIR="$HOME/keyport"
	mkdir -p "$KEYPORT_CONFIG_DIR"
	if [ -d "$KEYPORT_FIXTURE" ]; then cp -r "$KEYPORT_FIXTURE"/. "$KEYPORT_CONFIG_DIR"/; fi
	exec xvfb-run -a -s "-screen 0 1280x1024x24" "$0"
' "$bin"
ls -l "$out"/*.png
