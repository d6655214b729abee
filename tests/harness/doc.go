// Package harness tests the built plugin bundle the way Mattermost uses it: the tarball is checked
// as System Console's upload would accept it, then loaded with Mattermost's own plugin loader
// (plugin.NewEnvironment + Activate, the real go-plugin RPC handshake) with the server API mocked
// (plugintest.API), and driven against the real codex-host from the bundle, which runs the real
// Codex CLI against the testkit's mock model and posts to the testkit's fake Mattermost.
//
// It needs the built pieces, passed by `make test-harness`:
//
//	CODEX_MM_BUNDLE   dist/<id>-<version>.tar.gz
//	CODEX_MM_CODEX    the pinned Codex CLI (tools/codex/node_modules/.bin/codex)
//	CODEX_MM_TESTKIT  the codex-testkit binary (mock model, fake Mattermost)
package harness
