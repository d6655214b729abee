// Package e2e runs Codex for Mattermost end to end against a real Mattermost server.
//
// TestMain builds the Mattermost server from its Go module (the wrapper module in mmserver/,
// cached per version), starts a throwaway PostgreSQL cluster and the server on loopback, creates
// users, a team and channels through the REST API, uploads the plugin bundle with the same call
// System Console makes, configures and enables it. The managed codex-host from the bundle then runs
// the real Codex CLI against the testkit's mock model. Every scenario acts and asserts as a client
// does: slash commands through /api/v4/commands/execute, replies as posts, buttons through
// /api/v4/posts/{id}/actions/{action}, results read back from threads.
//
// Everything is torn down at the end, also on failure; the server and PostgreSQL logs stay in
// CODEX_MM_E2E_LOGS (the test prints where). Inputs, passed by `make e2e`:
//
//	CODEX_MM_BUNDLE    dist/<id>-<version>.tar.gz
//	CODEX_MM_CODEX     the pinned Codex CLI (tools/codex/node_modules/.bin/codex)
//	CODEX_MM_TESTKIT   the codex-testkit binary (mock model)
//	CODEX_MM_E2E_LOGS  directory for the logs of this run
//	CODEX_MM_E2E_CACHE where built Mattermost binaries are kept (default: the user cache dir)
package e2e
