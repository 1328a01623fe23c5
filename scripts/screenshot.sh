#!/usr/bin/env bash
# screenshot.sh BIN OUTDIR
#
# Runs the real Keyport app under Xvfb, in a private session (scripts/session.sh:
# fresh HOME, private D-Bus, gnome-keyring) with the fixture config in
# testdata/screenshot, and lets it write PNGs of its views into OUTDIR.
set -euo pipefail
bin="$1"; out="$2"
here="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$out"
rm -f "$out"/*.png
export KEYPORT_SCREENSHOTS="$out"
export KEYPORT_FIXTURE="$here/testdata/screenshot"
# The organization's managed settings: a managed server for the "managed" view.
export KEYPORT_MANAGED_FILE="$here/testdata/screenshot-managed.yaml"
"$here/scripts/session.sh" bash -c '
	export KEYPORT_CONFIG_DIR="$HOME/keyport"
	mkdir -p "$KEYPORT_CONFIG_DIR"
	if [ -d "$KEYPORT_FIXTURE" ]; then cp -r "$KEYPORT_FIXTURE"/. "$KEYPORT_CONFIG_DIR"/; fi
	exec xvfb-run -a -s "-screen 0 1280x800x24" "$0"
' "$bin"
ls -l "$out"/*.png
