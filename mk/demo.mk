# Try Codex for Mattermost in a real Mattermost, from a browser, the desktop app or a phone.
#   make demo   starts what the e2e suite starts (the Mattermost server built from its Go module,
#               PostgreSQL, the bundle uploaded and enabled, an admin, a team, allowed channels
#               and a demo project), prints the URL and the login, and keeps it all running until
#               Ctrl-C, which stops and removes everything.
#   DEMO_LISTEN=0.0.0.0:8065 DEMO_SITE_URL=http://<LAN address>:8065   reachable from a phone
#   DEMO_CODEX=real   Codex with your own login (CODEX_HOME, default ~/.codex) instead of the
#                     mock model
.PHONY: demo
DEMO_LISTEN ?= 127.0.0.1:8065
DEMO_SITE_URL ?=
DEMO_CODEX ?= mock
DEMO_LOGS ?= $(CURDIR)/target/demo/logs

demo: codex-cli testkit
	$(MAKE) --no-print-directory dist HOST_TARGETS="$(TEST_HOST_TARGETS)"
	mkdir -p target/demo && rm -rf $(DEMO_LOGS)
	cd tests/e2e && $(GO) test -c -o $(CURDIR)/target/demo/e2e.test .
	# The test binary itself (not `go test`) gets Ctrl-C, so that it tears everything down.
	cd tests/e2e && exec env \
		CODEX_MM_DEMO=1 \
		CODEX_MM_DEMO_LISTEN=$(DEMO_LISTEN) \
		CODEX_MM_DEMO_SITE_URL=$(DEMO_SITE_URL) \
		CODEX_MM_DEMO_CODEX=$(DEMO_CODEX) \
		CODEX_MM_BUNDLE=$(CURDIR)/$(BUNDLE) \
		CODEX_MM_CODEX=$(CURDIR)/tools/codex/node_modules/.bin/codex \
		CODEX_MM_TESTKIT=$(CURDIR)/target/debug/codex-testkit \
		CODEX_MM_E2E_LOGS=$(DEMO_LOGS) \
		CODEX_MM_E2E_CACHE=$(E2E_CACHE) \
		$(CURDIR)/target/demo/e2e.test -test.run '^TestDemo$$' -test.v -test.timeout 0
