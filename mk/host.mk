# codex-host: try the pipeline offline.
#   make try [PROMPT="..."]   build codex-host and the mock model, then run one prompt through
#                             `codex-host run` with the real Codex CLI, nothing leaving the machine
.PHONY: try
PROMPT ?= [[mock:patch]] add a greeting file
try: codex-cli
	$(CARGO) build --locked -p codex-host -p codex-testkit
	scripts/try-offline.sh "$(PROMPT)"
