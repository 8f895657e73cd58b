# baton — see README.md. Two commands for a fresh machine: make demo, make test.
GO      ?= go
BIN     := bin/baton
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/batonha/baton/internal/cli.version=$(VERSION)
export GOFLAGS ?= -buildvcs=false
# Debian versions start with a digit: 0.0.<commit time>+g<commit>.
DEB_VERSION ?= $(shell git log -1 --format=0.0.%cd+g%h --date=format:%Y%m%d%H%M%S 2>/dev/null || echo 0.0.0)
# nfpm is a Go module pinned in tools/go.mod (kept out of baton's own go.mod).
NFPM    := $(GO) tool -modfile=$(CURDIR)/tools/go.mod nfpm
PREFIX  ?= /usr/local
DESTDIR ?=

.PHONY: all build test-ui lab deb deb-amd64 deb-arm64 install test-systemd test unit vet fuzz demo lab-down bench-failover bench-vip bench-configsync bench-bgp bench-routes bench-sessions bench-witness test-partition test-adversarial bench-events clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/baton

# make test: installs what the tests need when missing, then vet, unit
# tests with -race (fuzz seeds run as ordinary tests), and the lab
# end-to-end tests with the real binary (as root; CI=true makes them fail
# rather than skip when they cannot run).
test: build
	./scripts/deps.sh test
	$(MAKE) lint
	$(GO) test -race -count=1 -timeout 15m -p 2 $$($(GO) list ./... | grep -v /e2e | grep -vx github.com/batonha/baton)
	$(MAKE) deb-amd64
	# The lab end-to-end suites measure timings: one package at a time.
	E2E_BIN=$(CURDIR)/$(BIN) DEB=$(CURDIR)/dist/baton_$(DEB_VERSION)_amd64.deb $(GO) test -race -count=1 -timeout 15m -p 1 $$($(GO) list ./e2e/... | grep -v /e2e/adversarial)
	$(MAKE) test-adversarial
	$(MAKE) test-systemd

# The adversarial suite (issue 13): the real pair in the lab attacked
# from a namespace of its own (config sync, session sync, heartbeats, the
# peer link, floods on every listener during failovers, a stale fenced
# writer on moto). One line per case, then
# adversarial cases=N refused=N failover_during_flood_ms=X failover_normal_ms=Y
test-adversarial: build
	./scripts/deps.sh test
	E2E_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 10m -v -run '^TestAdversarial$$' ./e2e/adversarial/

# The package under a real systemd: a Debian container (systemd-nspawn
# --boot) installs dist/*.deb and checks the unit's sandbox, READY, the
# watchdog, hooks, VIP, conntrack, config sync, stop, upgrade and remove.
# The container's root is cached under /var/cache/baton-test.
test-systemd: deb-amd64
	./scripts/deps.sh test-systemd
	./scripts/test-systemd.sh dist/baton_$(DEB_VERSION)_amd64.deb

# make lint: go vet, staticcheck (a go tool, pinned in go.mod) and the
# repository-wide rules in repo_test.go (package docs, layering, go mod
# tidy, metric names). make test runs it first.
lint:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) test -count=1 .

# Longer fuzzing of every wire decoder (not part of make test).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 60s ./internal/heartbeat/
	$(GO) test -run '^$$' -fuzz FuzzDecodeEntry -fuzztime 60s ./internal/provider/conntrack/
	$(GO) test -run '^$$' -fuzz FuzzDecodeBatch -fuzztime 60s ./internal/sessionsync/
	$(GO) test -run '^$$' -fuzz FuzzDecodeSnapshot -fuzztime 60s ./internal/action/localroutes/
	$(GO) test -run '^$$' -fuzz FuzzParseFence -fuzztime 60s ./internal/action/dns/

# The lab is its own binary: the test topology is never linked into baton.
LAB := bin/baton-lab
lab:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(LAB) ./cmd/baton-lab

demo: build lab
	@if [ "$$(id -u)" != 0 ]; then echo "make demo must run as root: the lab builds network namespaces, veth pairs and bridges."; exit 1; fi
	./$(LAB) demo --baton $(CURDIR)/$(BIN)

lab-down: lab
	./$(LAB) down

bench-failover: build
	./scripts/deps.sh bench-failover
	$(GO) run ./bench/failover -baton $(CURDIR)/$(BIN)

bench-vip: build
	./scripts/deps.sh bench-vip
	$(GO) run ./bench/vip -baton $(CURDIR)/$(BIN)

bench-configsync: build
	$(GO) run ./bench/configsync/

bench-bgp: build
	./scripts/deps.sh test
	$(GO) run ./bench/bgp -baton $(CURDIR)/$(BIN)

bench-routes: build
	./scripts/deps.sh bench-routes
	$(GO) run ./bench/routes -burst 100
	-$(GO) run ./bench/routes -burst 10 -cloud aws

bench-events: build
	./scripts/deps.sh bench-events
	$(GO) run ./bench/events -baton $(CURDIR)/$(BIN)

bench-sessions: build
	./scripts/deps.sh bench-sessions
	$(GO) run ./bench/sessions -baton $(CURDIR)/$(BIN)

# The full partition suite (200 trials per witness; Azure fewer: its
# shortest lease is 15 s). make test runs a reduced one.
test-partition: build
	./scripts/deps.sh test
	$(GO) run ./bench/partition -baton $(CURDIR)/$(BIN)

# An outage of the witness alone (10 s) for each witness type: the pair
# must keep its active, and get the lease back within 500 ms.
bench-witness: build
	./scripts/deps.sh test
	$(GO) run ./bench/witness -baton $(CURDIR)/$(BIN)

# Debian packages for amd64 and arm64 (cross-compiled, CGO off) in dist/.
deb: deb-amd64 deb-arm64

deb-amd64 deb-arm64:
	mkdir -p dist
	CGO_ENABLED=0 GOARCH=$(@:deb-%=%) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/baton-linux-$(@:deb-%=%) ./cmd/baton
	# nfpm expands variables in arch and version, not in paths: it packs dist/baton.
	cp dist/baton-linux-$(@:deb-%=%) dist/baton
	ARCH=$(@:deb-%=%) VERSION=$(DEB_VERSION) $(NFPM) package -f deploy/nfpm.yaml -p deb -t dist/
	rm -f dist/baton dist/baton-linux-$(@:deb-%=%)

# make install [PREFIX=/usr/local] [DESTDIR=]: the same files as the
# package, with the units pointing at $(PREFIX)/bin/baton.
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/baton
	install -d $(DESTDIR)/lib/systemd/system
	for u in baton.service baton-peerings.service; do \
		sed 's|/usr/bin/baton|$(PREFIX)/bin/baton|g' deploy/$$u >$(DESTDIR)/lib/systemd/system/$$u && \
		chmod 0644 $(DESTDIR)/lib/systemd/system/$$u || exit 1; done
	install -d -m 0700 $(DESTDIR)/etc/baton
	[ -e $(DESTDIR)/etc/baton/baton.yaml.example ] || install -m 0644 deploy/baton.yaml.example $(DESTDIR)/etc/baton/
	install -D -m 0755 deploy/hooks/notify-webhook $(DESTDIR)$(PREFIX)/share/baton/hooks/notify-webhook
	install -D -m 0755 deploy/hooks/systemctl-reload $(DESTDIR)$(PREFIX)/share/baton/hooks/systemctl-reload
	install -D -m 0644 deploy/completion/baton.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/baton
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/baton/README.md
	cp -R examples $(DESTDIR)$(PREFIX)/share/doc/baton/

# The status page in headless Chromium on a lab pair: a failover, the
# page's timeline, a switchover from the page; leaves bin/test-ui/.../ui.png
# (make test runs the same test among the e2e suites).
test-ui: build
	./scripts/deps.sh test
	mkdir -p bin/test-ui
	E2E_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 5m -run 'TestUI' -v -artifacts -outputdir $(CURDIR)/bin/test-ui ./e2e/

clean:
	rm -rf bin dist
