#!/usr/bin/env bash
# Runs the benchmarks and rewrites the results section of README.md from
# their output. BENCH selects benchmarks (-bench patterns, separated by
# spaces, run one after the other), COUNT the runs of each.
#   ./report.sh     # local → local at 1 and 4 GiB, local → S3 and → Thru at 1 GiB, 3 runs
set -euo pipefail
cd "$(dirname "$0")"
patterns=${BENCH:-'LocalToLocal/(1GiB|4GiB)-random$ LocalTo(S3|Thru)/1GiB-random$'}
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
for pattern in $patterns; do
	MFTFLOW_BENCH_4G=${MFTFLOW_BENCH_4G:-1} go test -run '^$' -bench "$pattern" -benchtime 1x -count "${COUNT:-3}" -timeout 90m . | tee -a "$raw"
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
