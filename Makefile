# The README's commands. `make test` is what CI runs.
GO ?= go

.PHONY: runner plugins test minio sshd ftpd gpg nats-server strace chromium test-short soak fmt vet lint bench quickstart proto

# The S3 tests need a MinIO server: scripts/minio.sh builds the pinned one into
# bin/ once (about five minutes), and the tests start it on 127.0.0.1. The SFTP
# tests need Debian's OpenSSH server: scripts/sshd.sh installs it (as root); the
# FTPS tests Debian's vsftpd, which scripts/ftpd.sh installs with a test user; the
# OpenPGP stages' interoperability tests Debian's GnuPG (scripts/gpg.sh). The
# cluster tests start three nats-server processes: scripts/nats-server.sh builds
# the version in go.mod into bin/ once. The durability tests watch system calls
# with strace: scripts/strace.sh installs it. The console's browser tests drive
# Debian's chromium headless: scripts/chromium.sh installs it. One package at a time (-p 1): the crash
# and failover tests inject their fault while a transfer is under way, which a
# machine busy with every other package at once makes hard to catch.
# The runner, and beside it in bin/plugins.d the shipped connector plugins
# (SFTP, FTPS), which the runner finds there without flags.
runner:
	$(GO) build -o bin/runner ./cmd/runner

plugins:
	$(GO) build -o bin/plugins.d/sftp ./plugins/sftp
	$(GO) build -o bin/plugins.d/ftps ./plugins/ftps

test: minio sshd ftpd gpg nats-server strace chromium
	$(GO) test -race -count=1 -p 1 -timeout 25m ./...

minio:
	@./scripts/minio.sh >/dev/null

sshd:
	@./scripts/sshd.sh >/dev/null

ftpd:
	@./scripts/ftpd.sh >/dev/null

gpg:
	@./scripts/gpg.sh >/dev/null

nats-server:
	@./scripts/nats-server.sh >/dev/null

strace:
	@./scripts/strace.sh >/dev/null

chromium:
	@./scripts/chromium.sh >/dev/null

# The crash harness at length: 20 runs of 10 SIGKILLs each on a 1 GiB
# file (with small ones beside it), for each target (local, S3, Thru);
# SOAK_TARGET=local narrows it. make test runs one short run of each.
SOAK_TARGET ?=
soak: minio nats-server
	MFTFLOW_CRASH_RUNS=20 MFTFLOW_CRASH_KILLS=10 MFTFLOW_CRASH_SIZE=1GiB MFTFLOW_CRASH_TARGET=$(SOAK_TARGET) \
		$(GO) test -run TestRandomKillsLoseNothing -count=1 -v -timeout 6h ./cmd/runner/

test-short:
	$(GO) test -short -count=1 ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

# gofmt, go vet, the pinned staticcheck and the pinned errcheck (outside tests);
# scripts/staticcheck.sh and scripts/errcheck.sh build them into bin/ once.
lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$$(./scripts/staticcheck.sh) ./...
	$$(./scripts/errcheck.sh) -ignoretests ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./benchmarks/

quickstart:
	$(GO) run ./cmd/runner run examples/quickstart.yaml

# Regenerates plugins/internal/pluginpb from plugins/proto (protoc from
# Debian's protobuf-compiler, its Go plugins pinned in scripts/proto.sh).
proto:
	./scripts/proto.sh
