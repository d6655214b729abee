# Policy modules: the example policies and the engine's tests.
#   make policies      builds target/policies/<name>.wasm (Rust, wasm32-wasip2) and the Python
#                      example into target/policy-fixtures/ (componentize-py from PyPI)
#   make test-policy   the engine's tests (hostile modules, chain semantics, hot reload, the
#                      example policies' case tables); part of `make test`
.PHONY: policies test-policy
policies:
	policies/build.sh

test-policy: policies
	$(CARGO) test --locked -p codex-policy

EXTRA_TESTS += test-policy
