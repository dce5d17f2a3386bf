// Command benchtable turns `go test -bench` output of the benchmarks package
// into a Markdown table: per workload and tool, the median throughput (MB/s,
// and files/s for workloads of many files) and peak RSS over the runs, and
// for each runner row ("runner", "runner-…") its throughput as a ratio of
// each baseline measured in the same benchmark and run ("io.Copy",
// "jetstream", "rclone", "curl", "built-in"...).
//
// The machine line comes from the "key: value" configuration lines of the
// input (go test prints goos, goarch and cpu; report.sh adds cores, memory,
// kernel and tool versions).
//
//	go test -run '^$' -bench LocalToLocal -benchtime 1x -count 3 . | go run ./cmd/benchtable
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// BenchmarkLocalToLocal/1GiB-random/runner-2   1   9240987201 ns/op   116.19 MB/s   1955 peak-RSS-MiB
var name = regexp.MustCompile(`^Benchmark(\w+)/([^/\s]+)/(\S+?)(?:-\d+)?$`)

// config is a "key: value" configuration line of the benchmark format.
var config = regexp.MustCompile(`^([a-z][a-z0-9-]*): (.+)$`)

type key struct{ bench, workload, tool string }

// samples are one row's values over the runs, by unit ("MB/s", "files/s",
// "peak-RSS-MiB").
type samples map[string][]float64

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func spread(v []float64) string {
	if len(v) < 2 {
		return "-"
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return num(s[0]) + "–" + num(s[len(s)-1])
}

// num formats a throughput with about three significant digits: 2463,
// 98.4, 4.02.
func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// medianOr formats the median of v, or "-" when there is none.
func medianOr(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	return num(median(v))
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	data := map[key]samples{}
	var order []key
	var machine []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if m := config.FindStringSubmatch(sc.Text()); m != nil {
			// go test repeats its lines for every run; pkg says nothing of the machine.
			if !seen[m[1]] && m[1] != "pkg" {
				seen[m[1]] = true
				machine = append(machine, m[1]+" "+strings.TrimSpace(m[2]))
			}
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue
		}
		m := name.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		k := key{m[1], m[2], m[3]}
		if data[k] == nil {
			data[k] = samples{}
			order = append(order, k)
		}
		// After the iteration count come value–unit pairs.
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return fmt.Errorf("%s: value %q of %s is not a number", f[0], f[i], f[i+1])
			}
			data[k][f[i+1]] = append(data[k][f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(order) == 0 {
		return fmt.Errorf("no benchmark results in the input")
	}
	// The table is made in memory and written in one go, so that one
	// error says whether it arrived.
	var b strings.Builder
	if len(machine) > 0 {
		fmt.Fprintf(&b, "Machine: %s.\n\n", strings.Join(machine, ", "))
	}
	fmt.Fprintf(&b, "Medians of %d runs; spread is min–max MB/s. A ratio compares the runner's median MB/s with a baseline's "+
		"in the same benchmark and workload; the bytes and files being the same, it is also the ratio of files/s.\n\n", len(data[order[0]]["MB/s"]))
	fmt.Fprintln(&b, "| benchmark | workload | tool | MB/s | spread | files/s | peak RSS MiB | runner ÷ baseline |")
	fmt.Fprintln(&b, "|---|---|---|---:|---:|---:|---:|---|")
	for _, k := range order {
		s := data[k]
		var ratios []string
		if isRunner(k.tool) {
			for _, b := range order {
				// A variant of the runner (runner-audit...) is also set
				// against the plain runner: what the variant costs.
				variant := k.tool != "runner" && b.tool == "runner"
				if b.bench == k.bench && b.workload == k.workload && (!isRunner(b.tool) || variant) {
					if base := median(data[b]["MB/s"]); base > 0 {
						ratios = append(ratios, fmt.Sprintf("%.2f× %s", median(s["MB/s"])/base, b.tool))
					}
				}
			}
		}
		ratio := "-"
		if len(ratios) > 0 {
			ratio = strings.Join(ratios, ", ")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", k.bench, k.workload, k.tool,
			medianOr(s["MB/s"]), spread(s["MB/s"]), medianOr(s["files/s"]), medianOr(s["peak-RSS-MiB"]), ratio)
	}
	_, err := io.WriteString(out, b.String())
	return err
}

func isRunner(tool string) bool { return tool == "runner" || strings.HasPrefix(tool, "runner-") }
