#!/usr/bin/env bash
# package.sh TAGS OUTDIR
#
# The desktop package of the host OS (fyne package), with keyport-cli (the
# CLI without the GUI toolkit) next to the app's binary: fyne packages one
# executable, and Keyport writes keyport-cli into stdio clients' entries
# when it finds it beside itself (it falls back to the app's binary).
set -euo pipefail
tags="$1"; out="$2"
cd "$(dirname "$0")/.."
mkdir -p "$out"
# fyne package bumps the build number in FyneApp.toml and rewrites it: keep
# the tree as it was.
saved="$(mktemp)"
cp FyneApp.toml "$saved"
trap 'cp "$saved" FyneApp.toml; rm -f "$saved"' EXIT
go run fyne.io/tools/cmd/fyne@v1.7.4 package --release --tags "$tags" --src . --icon assets/icon.png
# Built like fyne's --release builds the app: no debug info, no local paths.
cli="$(mktemp -d)/keyport-cli"
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$cli" ./cmd/keyport-cli

case "$(go env GOOS)" in
linux | freebsd | openbsd | netbsd)
	work="$(mktemp -d)"
	trap 'cp "$saved" FyneApp.toml; rm -f "$saved"; rm -rf "$work"' EXIT
	tar -C "$work" -xJf Keyport.tar.xz
	root="$(dirname "$(dirname "$(dirname "$(dirname "$(find "$work" -path '*/usr/local/bin/keyport' -type f | head -1)")")")")"
	install -m 0755 "$cli" "$root/usr/local/bin/keyport-cli"
	# The bundled Makefile installs and removes one binary: do the same for
	# keyport-cli on each of those lines (not the .desktop rewrite).
	awk '{ print } /bin\/\$\(Exec\)/ && !/sed / { line = $0; gsub(/\$\(Exec\)/, "keyport-cli", line); print line }' \
		"$root/Makefile" >"$root/Makefile.new"
	mv "$root/Makefile.new" "$root/Makefile"
	# Check the result: an install puts both binaries in place.
	make -s -C "$root" install DESTDIR="$work/check" PREFIX=/usr >/dev/null
	test -x "$work/check/usr/bin/keyport" && test -x "$work/check/usr/bin/keyport-cli"
	tar -C "$(dirname "$root")" -cJf "$out/Keyport.tar.xz" "$(basename "$root")"
	rm -f Keyport.tar.xz
	;;
darwin)
	cp "$cli" Keyport.app/Contents/MacOS/keyport-cli
	rm -rf "$out/Keyport.app" && mv Keyport.app "$out/"
	;;
windows)
	mv -f Keyport.exe "$out/" && cp "$cli" "$out/keyport-cli.exe"
	;;
esac
ls -l "$out"
