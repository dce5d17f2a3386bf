#!/usr/bin/env bash
# Runs the benchmarks and rewrites the results section of README.md from
# their output. BENCH selects benchmarks (a -bench pattern), COUNT the runs.
#   ./report.sh                       # 1 GiB and 4 GiB local → local, 3 runs
set -euo pipefail
cd "$(dirname "$0")"
pattern=${BENCH:-'LocalToLocal/(1GiB-random|4GiB-random)$'}
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
MFTFLOW_BENCH_4G=${MFTFLOW_BENCH_4G:-1} go test -run '^$' -bench "$pattern" -benchtime 1x -count "${COUNT:-3}" -timeout 90m . | tee "$raw"
table=$(go run ./cmd/benchtable < "$raw")
{
  sed '/<!-- results:begin -->/q' README.md
  echo
  echo "$table"
  echo
  sed -n '/<!-- results:end -->/,$p' README.md
} > README.md.new
mv README.md.new README.md
