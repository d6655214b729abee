"""no-full-access: a policy written in Python, built with componentize-py.

Denies runs that ask for the `danger-full-access` sandbox; allows everything else, optionally
capping the run time. Config (JSON): {"max_timeout_secs": 600}  (optional).

Build: componentize-py -d ../../wit -w policy-module componentize app -o no-full-access.wasm
"""

import json

from wit_world import exports
from wit_world.imports import host, types
from componentize_py_types import Err


def _config() -> dict:
    return json.loads(host.config() or "{}")


class Policy(exports.Policy):
    def validate_config(self, config: str) -> None:
        try:
            parsed = json.loads(config or "{}")
        except ValueError as e:
            raise Err(f"config is not valid JSON: {e}")
        if not isinstance(parsed, dict):
            raise Err("config must be a JSON object, e.g. {\"max_timeout_secs\": 600}")
        limit = parsed.get("max_timeout_secs")
        if limit is not None and (not isinstance(limit, int) or limit <= 0):
            raise Err("max_timeout_secs must be a positive whole number of seconds")

    def evaluate(self, request: types.Request) -> types.Verdict:
        if request.requested_sandbox == types.SandboxMode.DANGER_FULL_ACCESS:
            host.log(host.Level.INFO, f"refusing full access for {request.user.username}")
            return types.Verdict(
                decision=types.Decision_Deny(
                    "Runs without a sandbox are not allowed here; ask for workspace-write."
                ),
                rule_id="no-full-access",
            )
        limit = _config().get("max_timeout_secs")
        return types.Verdict(
            decision=types.Decision_Allow(
                types.Limits(sandbox=None, timeout_secs=limit, model=None)
            ),
            rule_id="sandboxed",
        )
