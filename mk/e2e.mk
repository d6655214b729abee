# End to end against a real Mattermost server: tests/e2e.
#   make e2e   builds the bundle, the Codex CLI and the mock model, then runs tests/e2e: the
#              Mattermost server built from its Go module (cached per version in E2E_CACHE),
#              PostgreSQL from Debian packages (installed if missing, a throwaway cluster on
#              loopback), the bundle uploaded and driven through the REST API.
#              Logs of the last run: target/e2e/logs (the test output says where).
#   make e2e E2E_RUN='TestHelp|TestApproval'   only the tests matching the pattern (go test -run)
.PHONY: e2e
E2E_CACHE ?= $(HOME)/.cache/codex-mm-e2e
E2E_LOGS ?= $(CURDIR)/target/e2e/logs
E2E_RUN ?=

e2e: codex-cli testkit
	$(MAKE) --no-print-directory dist HOST_TARGETS="$(TEST_HOST_TARGETS)"
	rm -rf $(E2E_LOGS)
	cd tests/e2e && \
		CODEX_MM_BUNDLE=$(CURDIR)/$(BUNDLE) \
		CODEX_MM_CODEX=$(CURDIR)/tools/codex/node_modules/.bin/codex \
		CODEX_MM_TESTKIT=$(CURDIR)/target/debug/codex-testkit \
		CODEX_MM_E2E_LOGS=$(E2E_LOGS) \
		CODEX_MM_E2E_CACHE=$(E2E_CACHE) \
		$(GO) test -count=1 -v -timeout 80m $(if $(E2E_RUN),-run '$(E2E_RUN)') ./...

EXTRA_TESTS += e2e
