package benchmarks

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mftflow/mftflow/bench"
)

// rateWorkload is what the rate benchmark moves: 100 MiB at 20 MiB/s, five
// seconds a run.
var rateWorkload = Workload{Workload: bench.Workload{Files: 1, Size: 100 << 20, Data: bench.DataRandom}}

const rateLimit = 20 << 20

// BenchmarkRateLimit moves 100 MiB local → local with the runner under a
// bandwidth limit of 20 MiB/s: on the sink (runner-sink-rate), and on the
// flow for two sinks together (runner-flow-rate, 200 MiB written), next to
// the same flow without a limit (runner). It reports achieved/limit: the
// bytes written to the sinks per second of the whole run (process start
// and the embedded server's included) over the limit; the target is within
// ±10%. The time the unlimited row takes is about what the limited rows
// spend beyond the limit's pace.
func BenchmarkRateLimit(b *testing.B) {
	bin, err := Runner()
	if err != nil {
		b.Fatal(err)
	}
	w := rateWorkload
	in, err := w.Materialize(benchDir(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Run(w.Name(), func(b *testing.B) {
		rows := []struct {
			name, flow string
			sinks      int // copies written
		}{
			{"runner", rateFlow(in, "", ""), 1},
			{"runner-sink-rate", rateFlow(in, "", "20MiB"), 1},
			{"runner-flow-rate", rateFlow(in, "20MiB", ""), 2},
		}
		for _, row := range rows {
			b.Run(row.name, func(b *testing.B) {
				runs := measure(b, w, func(work string) []string {
					return runnerCommand(b, bin, work, fmt.Sprintf(row.flow, filepath.Join(work, "a"), filepath.Join(work, "b")))
				})
				if row.flow != rows[0].flow && runs > 0 {
					achieved := float64(w.Bytes()) * float64(row.sinks*runs) / b.Elapsed().Seconds()
					b.ReportMetric(achieved/rateLimit, "achieved/limit")
				}
			})
		}
	})
}

// rateFlow returns a flow file from in to one sink (two with a flow rate),
// with the sink's and the flow's rate when not empty; the sinks' paths are
// left as %s.
func rateFlow(in, flowRate, sinkRate string) string {
	flow := `name: rate
source:
  local:
    path: ` + in + `
    watch: false
    stable_for: 0s
    after: leave
sinks:
  - name: a
    local:
      path: %s
`
	if sinkRate != "" {
		flow += "    rate: " + sinkRate + "\n"
	}
	if flowRate == "" {
		return flow + "#%s\n" // the second path, unused
	}
	return flow + `  - name: b
    local:
      path: %s
rate: ` + flowRate + "\n"
}
