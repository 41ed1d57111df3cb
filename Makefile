# g6 — see README.md. Everything runs on loopback.
GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         := bin
FUZZTIME    ?= 20s

.PHONY: all build run test lint vet fmt-check staticcheck race race-accel fuzz bench soak deb clean

all: build

build:
	$(GO) build -o $(BIN)/g6 .
	$(GO) build -o $(BIN)/backend ./tools/backend
	$(GO) build -o $(BIN)/loadgen ./tools/loadgen

# The demo: three HTTP backends behind 127.0.0.1:8080, three greeting/echo
# backends behind 127.0.0.1:8081. Ctrl-C stops everything.
run: build
	./tools/demo.sh

test: lint race race-accel

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

race:
	$(GO) test -race -count=1 -timeout 15m ./...

# The integration tests again with every master forced to accel = "sockmap"
# (G6_ACCEL overrides the config), so the kernel path keeps passing them.
race-accel:
	G6_ACCEL=sockmap $(GO) test -race -count=1 -timeout 15m ./e2e

# Each parser's fuzz target for FUZZTIME (go test allows one -fuzz per run).
fuzz:
	$(GO) test ./conf -run '^$$' -fuzz '^FuzzParseTOML$$' -fuzztime $(FUZZTIME)
	$(GO) test ./conf -run '^$$' -fuzz '^FuzzGlob$$' -fuzztime $(FUZZTIME)
	$(GO) test ./conf -run '^$$' -fuzz '^FuzzNameEntry$$' -fuzztime $(FUZZTIME)
	$(GO) test ./admin -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./conf -run '^$$' -fuzz '^FuzzParseLegacy$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ipc -run '^$$' -fuzz '^FuzzDecoder$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pool -run '^$$' -fuzz '^FuzzParseState$$' -fuzztime $(FUZZTIME)
	$(GO) test ./inspect -run '^$$' -fuzz '^FuzzProxy$$' -fuzztime $(FUZZTIME)
	$(GO) test ./inspect -run '^$$' -fuzz '^FuzzClientHello$$' -fuzztime $(FUZZTIME)
	$(GO) test ./inspect -run '^$$' -fuzz '^FuzzMatchSNI$$' -fuzztime $(FUZZTIME)
	$(GO) test ./conf -run '^$$' -fuzz '^FuzzPattern$$' -fuzztime $(FUZZTIME)
	$(GO) test ./conf -run '^$$' -fuzz '^FuzzParseSource$$' -fuzztime $(FUZZTIME)
	$(GO) test ./master -run '^$$' -fuzz '^FuzzParseG6Fds$$' -fuzztime $(FUZZTIME)
	$(GO) test ./inspect -run '^$$' -fuzz '^FuzzSSLTLV$$' -fuzztime $(FUZZTIME)
	$(GO) test ./certs -run '^$$' -fuzz '^FuzzSelect$$' -fuzztime $(FUZZTIME)
	$(GO) test ./health -run '^$$' -fuzz '^FuzzAnswers$$' -fuzztime $(FUZZTIME)

# A Debian package (tools/deb, nfpm): a static g6, the systemd unit, the
# annotated example as the conffile /etc/g6/g6.toml, g6(1), bash completion.
# Install: apt install ./bin/g6_amd64.deb
deb:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/deb/g6 .
	$(GO) run ./tools/deb -bin $(BIN)/deb/g6 -o $(BIN)/g6_amd64.deb

# g6 vs HAProxy (mode tcp), nginx stream and direct, same backends and load,
# interleaved rounds; rewrites BENCHMARKS.md. By default the load generators
# and the proxies sit in two network namespaces joined by veth (needs root;
# BENCHFLAGS="-topology loopback" for all on 127.0.0.1). Needs haproxy, nginx,
# libnginx-mod-stream, wrk, iperf3, dnsperf, dnsmasq and dig (it prints the
# apt-get line if not).
# About 20 minutes (5 rounds); BENCHFLAGS="-rounds 7 -d 10s" to change the run.
BENCHFLAGS ?=
bench: build
	$(GO) build -o $(BIN)/bench ./tools/bench
	$(BIN)/bench -g6 $(BIN)/g6 $(BENCHFLAGS)

# g6 under load and faults (HUP, USR2, kill -9 of random workers) for SOAK
# (default 3m): checked short sessions at 300/s and sha256-checked streams;
# then, for the last third, the full-rate phase: short sessions as fast as
# the machine takes them with a USR2 or HUP every 0.5 s and no kills.
# Fails on any failure no killed worker explains, any corruption, a server
# isolated in the full-rate phase, or a connection count left over. Not
# part of make test.
SOAK ?= 3m
soak: build
	$(GO) build -o $(BIN)/soak ./tools/soak
	$(BIN)/soak -g6 $(BIN)/g6 -backend $(BIN)/backend -d $(SOAK)

clean:
	rm -rf $(BIN)
