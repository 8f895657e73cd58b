# baton — see README.md. Two commands for a fresh machine: make demo, make test.
GO      ?= go
BIN     := bin/baton
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/batonha/baton/internal/cli.version=$(VERSION)
export GOFLAGS ?= -buildvcs=false

.PHONY: all build lab test unit vet fuzz demo lab-down bench-failover bench-vip bench-configsync bench-bgp bench-routes bench-sessions bench-witness test-partition clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/baton

# make test: installs what the tests need when missing, then vet, unit
# tests with -race (fuzz seeds run as ordinary tests), and the lab
# end-to-end tests with the real binary (as root; CI=true makes them fail
# rather than skip when they cannot run).
test: build
	./scripts/deps.sh test
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m -p 2 $$($(GO) list ./... | grep -v /e2e)
	# The lab end-to-end suites measure timings: one package at a time.
	E2E_BIN=$(CURDIR)/$(BIN) $(GO) test -race -count=1 -timeout 15m -p 1 ./e2e/...

# Longer fuzzing of every wire decoder (not part of make test).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 60s ./internal/heartbeat/
	$(GO) test -run '^$$' -fuzz FuzzDecodeEntry -fuzztime 60s ./internal/provider/conntrack/
	$(GO) test -run '^$$' -fuzz FuzzDecodeBatch -fuzztime 60s ./internal/sessionsync/

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
	$(GO) run ./bench/routes -burst 100
	-$(GO) run ./bench/routes -burst 10

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

clean:
	rm -rf bin
