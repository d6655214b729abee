# Codex for Mattermost: build, test, package and deploy.
#
#   make dist     plugin bundle dist/<id>-<version>.tar.gz, uploadable in System Console
#   make deploy   upload and enable the bundle (MM_SERVICESETTINGS_SITEURL + MM_ADMIN_TOKEN,
#                 or the server's local-mode socket)
#   make test     the lint checks, then every test suite (test-host, test-plugin, test-harness, and
#                 those added by mk/*.mk)
#   make lint     formatting and static checks: rustfmt, clippy, gofmt, go vet
#
# Works on a fresh machine with Go, Rust (rustup), Node.js/npm and Python 3: the Makefile installs
# the rest itself (Rust musl targets, zig, cargo-zigbuild), without prompting.
# Other parts of the project add their own targets in mk/*.mk (included below).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := dist

GO ?= go
CARGO ?= cargo
NPM ?= npm
PYTHON ?= python3

PLUGIN_ID := $(shell sed -n 's/^ *"id": *"\([^"]*\)".*/\1/p' manifest.json | head -n 1)
# The one place the version is set.
PLUGIN_VERSION ?= $(shell cat VERSION)
BUNDLE_NAME := $(PLUGIN_ID)-$(PLUGIN_VERSION).tar.gz
BUNDLE := dist/$(BUNDLE_NAME)
BUNDLE_DIR := dist/$(PLUGIN_ID)

# Platforms the plugin executable is built for (<os>-<arch>, as in manifest.json).
PLUGIN_PLATFORMS ?= linux-amd64 linux-arm64 darwin-amd64 darwin-arm64
# Platforms codex-host is built for, statically linked against musl. Override for a quick build,
# e.g. `make dist HOST_TARGETS=linux-amd64`.
HOST_TARGETS ?= linux-amd64 linux-arm64
HOST_PROFILE ?= release
# The bundle the test suites load carries only the host for this machine (the arm64 cross build
# belongs to `make dist`, not to every test run).
TEST_HOST_TARGETS ?= linux-amd64
# Cargo.lock is authoritative in CI; empty this to let cargo update it while developing.
CARGO_LOCKED ?= --locked
HOST_PROFILE_DIR = $(if $(filter dev,$(HOST_PROFILE)),debug,$(HOST_PROFILE))

PLUGIN_OUT := plugin/server/dist
TOOLS_DIR := $(CURDIR)/target/tools
ZIG_VENV := $(TOOLS_DIR)/zig-venv
ZIGLANG_VERSION ?= 0.13.0.post1
CARGO_ZIGBUILD_VERSION ?= 0.20.1
export PATH := $(TOOLS_DIR)/bin:$(PATH)

musl_triple = $(if $(filter linux-amd64,$(1)),x86_64-unknown-linux-musl,$(if $(filter linux-arm64,$(1)),aarch64-unknown-linux-musl,$(error HOST_TARGETS: no musl target for $(1); accepted: linux-amd64 linux-arm64)))
HOST_TRIPLES := $(foreach t,$(HOST_TARGETS),$(call musl_triple,$(t)))

# Extension points for mk/*.mk: EXTRA_TESTS (run by `make test`).
EXTRA_TESTS :=
-include mk/*.mk

# `make dist` builds the policy modules too once mk/policies.mk provides them.
POLICIES_PREREQ := $(if $(wildcard mk/policies.mk),policies)

## ---------------------------------------------------------------------------------------------
## Build

.PHONY: all dist server host webapp bundle manifest-check
all: test dist

dist: server host webapp $(POLICIES_PREREQ)
	$(MAKE) --no-print-directory bundle

## The plugin executable for every platform in PLUGIN_PLATFORMS (Go cross-compilation, no cgo).
server:
	mkdir -p $(PLUGIN_OUT)
	cd plugin && for platform in $(PLUGIN_PLATFORMS); do \
		os=$${platform%-*}; arch=$${platform#*-}; \
		echo "go build plugin-$$os-$$arch"; \
		env CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w" \
			-o server/dist/plugin-$$os-$$arch ./server; \
	done

## codex-host for every platform in HOST_TARGETS, statically linked against musl so that the
## managed host runs on any Linux distribution.
host: host-toolchain
	mkdir -p $(PLUGIN_OUT)
	$(foreach t,$(HOST_TARGETS),\
		$(CARGO) zigbuild $(CARGO_LOCKED) -p codex-host --profile $(HOST_PROFILE) --target $(call musl_triple,$(t)) && \
		cp target/$(call musl_triple,$(t))/$(HOST_PROFILE_DIR)/codex-host $(PLUGIN_OUT)/codex-host-$(t);)

## Installs what `host` needs: the Rust musl targets, zig (from PyPI, in a venv under target/tools)
## and cargo-zigbuild (from crates.io, into target/tools).
.PHONY: host-toolchain
host-toolchain:
	@installed=$$(rustup target list --installed); \
	for triple in $(HOST_TRIPLES); do \
		grep -qx $$triple <<<"$$installed" || rustup target add $$triple; \
	done
	@if ! zig version >/dev/null 2>&1; then \
		echo "installing zig $(ZIGLANG_VERSION) from PyPI into $(ZIG_VENV)"; \
		$(PYTHON) -m venv $(ZIG_VENV); \
		$(ZIG_VENV)/bin/pip install --quiet --disable-pip-version-check ziglang==$(ZIGLANG_VERSION); \
		mkdir -p $(TOOLS_DIR)/bin; \
		printf '#!/bin/sh\nexec "%s" -m ziglang "$$@"\n' $(ZIG_VENV)/bin/python > $(TOOLS_DIR)/bin/zig; \
		chmod +x $(TOOLS_DIR)/bin/zig; \
	fi
	@if ! command -v cargo-zigbuild >/dev/null; then \
		echo "installing cargo-zigbuild $(CARGO_ZIGBUILD_VERSION) into $(TOOLS_DIR)"; \
		$(CARGO) install --quiet --locked --root $(TOOLS_DIR) cargo-zigbuild --version $(CARGO_ZIGBUILD_VERSION); \
	fi

## The web app bundle: a stub that registers the plugin (no build toolchain needed).
webapp:
	@test -f webapp-stub/main.js

## Packs dist/<id>-<version>.tar.gz from what server, host, webapp and policies built, in the
## layout System Console > Plugins > Upload accepts: <id>/plugin.json, <id>/server/dist/...,
## <id>/webapp/dist/main.js, <id>/assets/icon.svg, <id>/policies/.
bundle:
	rm -rf $(BUNDLE_DIR) $(BUNDLE)
	mkdir -p $(BUNDLE_DIR)/server/dist $(BUNDLE_DIR)/webapp/dist
	cd plugin && $(GO) run ./build/manifest -in ../manifest.json -version $(PLUGIN_VERSION) -out ../$(BUNDLE_DIR)/plugin.json
	for platform in $(PLUGIN_PLATFORMS); do cp $(PLUGIN_OUT)/plugin-$$platform $(BUNDLE_DIR)/server/dist/; done
	for target in $(HOST_TARGETS); do cp $(PLUGIN_OUT)/codex-host-$$target $(BUNDLE_DIR)/server/dist/; done
	cp webapp-stub/main.js $(BUNDLE_DIR)/webapp/dist/main.js
	mkdir -p $(BUNDLE_DIR)/assets && cp assets/icon.svg $(BUNDLE_DIR)/assets/icon.svg
	if [ -d target/policies ]; then cp -r target/policies $(BUNDLE_DIR)/policies; fi
	cd dist && tar -czf $(BUNDLE_NAME) $(PLUGIN_ID)
	@echo "plugin bundle: $(BUNDLE)"

## ---------------------------------------------------------------------------------------------
## Deploy

## Uploads the bundle and enables it, through the server's local-mode socket if there is one
## (MM_LOCALSOCKETPATH, default /var/tmp/mattermost_local.socket), else through the REST API with
## MM_SERVICESETTINGS_SITEURL and MM_ADMIN_TOKEN (or MM_ADMIN_USERNAME + MM_ADMIN_PASSWORD).
.PHONY: deploy
deploy: dist
	cd plugin && $(GO) run ./build/pluginctl deploy $(PLUGIN_ID) ../$(BUNDLE)

## ---------------------------------------------------------------------------------------------
## Test

.PHONY: test lint test-host test-plugin test-harness test-bundle codex-cli testkit
test: lint test-host test-plugin test-harness $(EXTRA_TESTS)

# The Go modules the lint checks cover (tests/e2e/mmserver only wraps the Mattermost server).
GO_MODULES := plugin tests/harness tests/e2e

## Formatting and static checks; a machine owns formatting, so nothing here is a review topic.
## Fix with `cargo fmt --all` and `gofmt -w <file>`.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets $(CARGO_LOCKED) -- -D warnings
	@unformatted="$$(gofmt -l $(GO_MODULES))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt: not formatted (run gofmt -w on them):"; echo "$$unformatted"; exit 1; fi
	for m in $(GO_MODULES); do (cd $$m && $(GO) vet ./...); done

## codex-host's own tests: unit tests, then its scenarios (the real `codex-host serve`, the real
## Codex CLI against the mock model, the example policy modules, the fake Mattermost).
test-host: codex-cli $(POLICIES_PREREQ)
	$(CARGO) test $(CARGO_LOCKED) -p codex-host

## The plugin's unit tests (no server, no host: an in-test Unix-socket server plays the host).
test-plugin:
	cd plugin && $(GO) vet ./... && $(GO) test ./...

## The harness: the built bundle checked as Mattermost would (manifest, tarball), then loaded with
## Mattermost's own plugin loader and driven against the real codex-host and the real Codex CLI
## (offline, against the testkit's mock model).
test-harness: codex-cli testkit
	$(MAKE) --no-print-directory dist HOST_TARGETS="$(TEST_HOST_TARGETS)"
	cd tests/harness && \
		CODEX_MM_BUNDLE=$(CURDIR)/$(BUNDLE) \
		CODEX_MM_HOST_TARGETS="$(TEST_HOST_TARGETS)" \
		CODEX_MM_CODEX=$(CURDIR)/tools/codex/node_modules/.bin/codex \
		CODEX_MM_TESTKIT=$(CURDIR)/target/debug/codex-testkit \
		$(GO) test -count=1 -v ./...

## Only the bundle checks (manifest valid for Mattermost, every named file in the tarball).
test-bundle: dist
	cd tests/harness && CODEX_MM_BUNDLE=$(CURDIR)/$(BUNDLE) CODEX_MM_HOST_TARGETS="$(HOST_TARGETS)" $(GO) test -count=1 -run TestBundle ./...

## The pinned Codex CLI the tests drive (tools/codex/package-lock.json).
## (A stamp file, because npm gives installed files fixed old timestamps.)
CODEX_CLI_STAMP := tools/codex/node_modules/.installed
codex-cli: $(CODEX_CLI_STAMP)
$(CODEX_CLI_STAMP): tools/codex/package.json tools/codex/package-lock.json
	cd tools/codex && $(NPM) ci --no-audit --no-fund
	touch $@

## The mock model and fake Mattermost server used by the tests.
testkit:
	$(CARGO) build $(CARGO_LOCKED) -p codex-testkit

## ---------------------------------------------------------------------------------------------

.PHONY: clean
clean:
	rm -rf dist $(PLUGIN_OUT)
