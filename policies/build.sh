#!/usr/bin/env bash
# Builds every example policy into target/policies/<name>.wasm with
# `cargo build --target wasm32-wasip2` (see .cargo/config.toml here), and the Python example into
# target/policy-fixtures/ (kept out of the plugin bundle: it embeds CPython, ~18 MB) with
# componentize-py installed from PyPI into target/py-venv. Incremental: run it as often as you like.
# The Rust examples target the current world (wit/policy.wit) except business-hours, which stays
# on 0.1.0 (wit/0.1.0/); the Python example is built against 0.1.0 too, so that both kinds of
# toolchain keep proving that 0.1.0 modules load.
# Set POLICIES_SKIP_PYTHON=1 to skip the Python example (the engine's tests then fail, saying so).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out="$root/target/policies"
componentize_py_version=0.25.1
mkdir -p "$out"

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

(cd "$here" && cargo build --release --locked --quiet --target wasm32-wasip2 --target-dir "$root/target/policies-build")
for crate in allowlist readonly-public approval-for-risky business-hours command-guard; do
  built="$root/target/policies-build/wasm32-wasip2/release/${crate//-/_}.wasm"
  cp -p "$built" "$out/$crate.wasm"
done

if [ "${POLICIES_SKIP_PYTHON:-}" = 1 ]; then
  echo "policies: skipped the Python example (POLICIES_SKIP_PYTHON=1)" >&2
  exit 0
fi
venv="$root/target/py-venv"
if [ ! -x "$venv/bin/componentize-py" ] ||
   ! "$venv/bin/componentize-py" --version 2>/dev/null | grep -q "$componentize_py_version"; then
  command -v python3 >/dev/null || {
    echo "policies: python3 is needed to build policies/python-no-full-access (or set POLICIES_SKIP_PYTHON=1)" >&2
    exit 1
  }
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$componentize_py_version"
fi
py_src="$here/python-no-full-access"
mkdir -p "$root/target/policy-fixtures"
py_out="$root/target/policy-fixtures/python-no-full-access.wasm"
py_wit="$root/wit/0.1.0"
if [ ! -f "$py_out" ] || [ -n "$(find "$py_src" "$py_wit" -newer "$py_out" \( -name '*.py' -o -name '*.wit' \) -print -quit)" ]; then
  (cd "$py_src" && "$venv/bin/componentize-py" -d "$py_wit" -w policy-module componentize app -o "$py_out.tmp" >/dev/null)
  mv "$py_out.tmp" "$py_out"
fi
