#!/usr/bin/env bash
# Shared by the scripts that build a pinned tool into ./bin (relative to the
# module root): source it, then call
#
#   pinned NAME MODULE VERSION    # builds MODULE@VERSION into bin/NAME
#
# It builds unless bin/NAME is there and bin/NAME.version says VERSION, then
# prints the binary's path.

pinned() {
	local name=$1 module=$2 version=$3
	local root bin target stamp
	root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
	bin="$root/bin"
	target="$bin/$name"
	stamp="$bin/$name.version" # the version bin/NAME was built from
	if [[ ! -x "$target" || "$(cat "$stamp" 2>/dev/null)" != "$version" ]]; then
		mkdir -p "$bin"
		echo "building $name@$version into $bin (takes a few minutes)" >&2
		# Outside any module's influence: "go install pkg@version" ignores
		# the current module. -trimpath keeps the binary free of this
		# machine's paths.
		(cd "$bin" && GOBIN="$bin" GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
			go install -trimpath "$module@$version")
		echo "$version" >"$stamp"
	fi
	echo "$target"
}
