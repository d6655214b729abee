#!/usr/bin/env bash
# Tries the whole host pipeline on this machine with nothing leaving it: starts the mock model
# from codex-testkit, then runs `codex-host run` with the real Codex CLI pointed at it, in a
# scratch repository. Usage: scripts/try-offline.sh ["prompt"]   (or `make try PROMPT="..."`)
set -euo pipefail
cd "$(dirname "$0")/.."
prompt=${1:-"[[mock:patch]] add a greeting file"}
work=$(mktemp -d)
trap 'kill "$mock_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
target/debug/codex-testkit mock-model --listen 127.0.0.1:0 --addr-file "$work/addr" &
mock_pid=$!
for _ in $(seq 100); do [ -s "$work/addr" ] && break; sleep 0.05; done
[ -s "$work/addr" ] || { echo "the mock model did not start" >&2; exit 1; }
addr=$(cat "$work/addr")
mkdir -p "$work/repo"
echo "repository: $work/repo    mock model: http://$addr/v1" >&2
# The Codex config that points Codex at the mock model, as every test suite uses it.
overrides=()
while IFS= read -r line; do overrides+=(-c "$line"); done \
  < <(target/debug/codex-testkit codex-config --base-url "http://$addr/v1")
MOCK_API_KEY=offline target/debug/codex-host run \
  --repo "$work/repo" --state-dir "$work/state" \
  --codex tools/codex/node_modules/.bin/codex --model gpt-5.5 --env MOCK_API_KEY \
  "${overrides[@]}" \
  "$prompt"
echo "files in the repository after the run:" >&2
ls -la "$work/repo" >&2
