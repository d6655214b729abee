# Benchmarks: the performance report (bench/REPORT.md).
#   make bench         measures everything and writes bench/REPORT.md (7.5 min on 2 cores after `make test`):
#                      the policy chain vs Cedar, the host's acknowledgements under load over the
#                      socket, the plugin's overhead through Mattermost's loader, a remote
#                      runner next to the socket, the policy decision per command approval, the host's
#                      memory, and the bridge overhead per Codex run
#   make bench QUICK=1 the same with tiny counts: checks that every benchmark works (report in
#                      target/bench/REPORT.md, not the committed one)
#   make bench-build   checks that the benchmarks build and their report logic is right; part of
#                      `make test` (benchmarks are not pass/fail tests)
.PHONY: bench bench-build

BENCH_RESULTS := $(CURDIR)/target/bench/results
BENCH_REPORT := $(if $(QUICK),target/bench/REPORT.md,bench/REPORT.md)
BENCH_QUICK := $(if $(QUICK),--quick)
# The host measured is the one the bundle ships (static, musl), as the plugin would start it.
BENCH_HOST := $(PLUGIN_OUT)/codex-host-linux-amd64

bench-build:
	$(CARGO) test $(CARGO_LOCKED) -p codex-bench
	cd tests/harness && $(GO) vet ./... && $(GO) test -count=1 -run '^$$' ./...

bench: codex-cli testkit $(POLICIES_PREREQ)
	$(MAKE) --no-print-directory dist HOST_TARGETS=linux-amd64
	$(CARGO) build $(CARGO_LOCKED) --release -p codex-bench
	rm -rf $(BENCH_RESULTS) && mkdir -p $(BENCH_RESULTS)
	start=$$(date +%s); \
	target/release/codex-bench policy $(BENCH_QUICK) --results $(BENCH_RESULTS); \
	target/release/codex-bench commands $(BENCH_QUICK) --results $(BENCH_RESULTS); \
	target/release/codex-bench host $(BENCH_QUICK) --results $(BENCH_RESULTS) \
		--host-bin $(BENCH_HOST) --standin target/release/codex-standin; \
	(cd tests/harness && \
		CODEX_BENCH_RESULTS=$(BENCH_RESULTS) $(if $(QUICK),CODEX_BENCH_QUICK=1) \
		CODEX_MM_BUNDLE=$(CURDIR)/$(BUNDLE) \
		CODEX_MM_CODEX=$(CURDIR)/tools/codex/node_modules/.bin/codex \
		CODEX_MM_TESTKIT=$(CURDIR)/target/debug/codex-testkit \
		$(GO) test -count=1 -run 'TestBenchPluginOverhead|TestBenchRunnerOverhead' ./...); \
	target/release/codex-bench bridge $(BENCH_QUICK) --results $(BENCH_RESULTS) --host-bin $(BENCH_HOST); \
	target/release/codex-bench report --results $(BENCH_RESULTS) --out $(BENCH_REPORT) \
		--elapsed-secs $$(( $$(date +%s) - start ))
