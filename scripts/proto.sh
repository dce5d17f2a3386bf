#!/usr/bin/env bash
# Regenerates the Go code of the plugin protocol (plugins/proto/*.proto) into
# plugins/internal/pluginpb. protoc comes from Debian's protobuf-compiler
# (installed when missing); its Go plugins are pinned here and built into bin/.
set -euo pipefail

PROTOC_GEN_GO_VERSION="${PROTOC_GEN_GO_VERSION:-v1.36.12}"        # = google.golang.org/protobuf in go.mod
PROTOC_GEN_GO_GRPC_VERSION="${PROTOC_GEN_GO_GRPC_VERSION:-v1.6.2}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/bin"
mkdir -p "$bin"

if ! command -v protoc >/dev/null; then
	echo "installing Debian's protobuf-compiler" >&2
	sudo=""
	[[ $(id -u) -eq 0 ]] || sudo=sudo
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends protobuf-compiler >&2
fi

install() { # module@version binary
	local stamp="$bin/$2.version"
	if [[ ! -x "$bin/$2" || "$(cat "$stamp" 2>/dev/null)" != "$1" ]]; then
		(cd "$bin" && GOBIN="$bin" GOFLAGS=-buildvcs=false go install -trimpath "$1")
		echo "$1" >"$stamp"
	fi
}
install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION" protoc-gen-go
install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION" protoc-gen-go-grpc

cd "$root/plugins/proto"
PATH="$bin:$PATH" protoc --go_out=../internal/pluginpb --go_opt=paths=source_relative \
	--go-grpc_out=../internal/pluginpb --go-grpc_opt=paths=source_relative \
	plugin.proto
echo "generated plugins/internal/pluginpb from plugins/proto/plugin.proto ($(protoc --version))" >&2
