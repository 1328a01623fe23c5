#!/usr/bin/env bash
# session.sh CMD [ARGS...]
#
# Runs CMD inside a private desktop-like session, so tests hit real services
# and never the developer's own:
#   - a fresh, empty HOME (and XDG dirs) that is removed afterwards;
#   - a private D-Bus session bus (dbus-run-session);
#   - gnome-keyring-daemon's Secret Service on that bus, unlocked with a
#     throwaway password, so go-keyring talks to a real OS keychain.
# Go's caches stay where they were, so builds are not repeated.
set -euo pipefail

for tool in dbus-run-session gnome-keyring-daemon; do
	command -v "$tool" >/dev/null || { echo "session.sh: $tool is missing; run 'make deps'" >&2; exit 1; }
done

if command -v go >/dev/null; then
	GOCACHE="$(go env GOCACHE)"; GOMODCACHE="$(go env GOMODCACHE)"; GOPATH="$(go env GOPATH)"
	export GOCACHE GOMODCACHE GOPATH
fi
# npm keeps its cache under HOME; keep using the real one.
export npm_config_cache="${npm_config_cache:-$HOME/.npm}"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/keyport-session.XXXXXX")"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

export HOME="$tmp/home"
export XDG_CONFIG_HOME="$HOME/.config" XDG_DATA_HOME="$HOME/.local/share" XDG_CACHE_HOME="$HOME/.cache"
export XDG_RUNTIME_DIR="$tmp/run"
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"

set +e
dbus-run-session -- bash -c '
	set -e
	# --unlock reads the login keyring password on stdin and creates the keyring.
	eval "$(printf "pw\n" | gnome-keyring-daemon --unlock --components=secrets)"
	export GNOME_KEYRING_CONTROL
	export KEYPORT_TEST_KEYRING=1
	exec "$@"
' session "$@"
rc=$?
set -e
exit $rc
