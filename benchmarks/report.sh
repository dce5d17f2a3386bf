#!/usr/bin/env bash
# Runs the benchmarks and rewrites the results section of README.md from
# their output. BENCH selects benchmarks (-bench patterns, separated by
# spaces, run one after the other), COUNT the runs of each (default 3).
#
#   ./report.sh   # every local → local workload (4 GiB included), → S3, → Thru,
#                 # S3 → S3 and the plugin sink at 1 GiB and 100 × 10 MiB: about 35 minutes on 2 cores
#   BENCH='PluginSink/10000x4KiB' COUNT=1 ./report.sh
#
# The table holds only what this run measured: ratios are taken within a run.
set -euo pipefail
cd "$(dirname "$0")"
patterns=${BENCH:-'LocalToLocal LocalTo(S3|Thru)/(1GiB-random|100x10MiB-random)$ S3ToS3/(1GiB-random|100x10MiB-random)$ PluginSink/(1GiB-random|100x10MiB-random)$'}
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
# The machine, as "key: value" lines of the benchmark format (go test adds
# goos, goarch and cpu); cmd/benchtable prints them above the table.
{
	echo "cores: $(nproc)"
	echo "memory: $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "kernel: $(uname -sr)"
	echo "go: $(go env GOVERSION)"
	echo "rclone: $("$(../scripts/rclone.sh)" version | awk 'NR == 1 { print $2 }')"
	if command -v curl >/dev/null; then echo "curl: $(curl --version | awk 'NR == 1 { print $2 }')"; fi
} > "$raw"
for pattern in $patterns; do
	MFTFLOW_BENCH_4G=${MFTFLOW_BENCH_4G:-1} go test -run '^$' -bench "$pattern" -benchtime 1x -count "${COUNT:-3}" -timeout 120m . | tee -a "$raw"
done
table=$(go run ./cmd/benchtable < "$raw")
{
  sed '/<!-- results:begin -->/q' README.md
  echo
  echo "$table"
  echo
  sed -n '/<!-- results:end -->/,$p' README.md
} > README.md.new
mv README.md.new README.md
