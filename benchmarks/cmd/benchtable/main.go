// Command benchtable turns `go test -bench` output of the benchmarks package
// into a Markdown table: per workload and tool, the median throughput and
// peak RSS over the runs, and for each runner row ("runner", "runner-…")
// its throughput as a ratio of each baseline measured in the same run.
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
var line = regexp.MustCompile(`^Benchmark(\w+)/([^/\s]+)/([^\s]+?)(?:-\d+)?\s+\d+\s+\d+ ns/op\s+([\d.]+) MB/s(?:\s+([\d.]+) peak-RSS-MiB)?`)

type key struct{ bench, workload, tool string }

type samples struct{ mbps, rss []float64 }

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
	return fmt.Sprintf("%.0f–%.0f", s[0], s[len(s)-1])
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	data := map[key]*samples{}
	var order []key
	var cpu string
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if c, ok := strings.CutPrefix(sc.Text(), "cpu: "); ok {
			cpu = c
		}
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		k := key{m[1], m[2], m[3]}
		if data[k] == nil {
			data[k] = &samples{}
			order = append(order, k)
		}
		mbps, _ := strconv.ParseFloat(m[4], 64)
		data[k].mbps = append(data[k].mbps, mbps)
		if m[5] != "" {
			rss, _ := strconv.ParseFloat(m[5], 64)
			data[k].rss = append(data[k].rss, rss)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(order) == 0 {
		return fmt.Errorf("no benchmark results in the input")
	}
	fmt.Fprintf(out, "Machine: %s. Medians of %d runs; spread is min–max MB/s.\n\n", cpu, len(data[order[0]].mbps))
	fmt.Fprintln(out, "| benchmark | workload | tool | MB/s | spread | peak RSS MiB | runner ÷ baseline |")
	fmt.Fprintln(out, "|---|---|---|---:|---:|---:|---|")
	for _, k := range order {
		s := data[k]
		rss, ratios := "-", []string{}
		if len(s.rss) > 0 {
			rss = fmt.Sprintf("%.0f", median(s.rss))
		}
		if isRunner(k.tool) {
			for _, b := range order {
				if b.bench == k.bench && b.workload == k.workload && !isRunner(b.tool) {
					ratios = append(ratios, fmt.Sprintf("%.2f× %s", median(s.mbps)/median(data[b].mbps), b.tool))
				}
			}
		}
		ratio := "-"
		if len(ratios) > 0 {
			ratio = strings.Join(ratios, ", ")
		}
		fmt.Fprintf(out, "| %s | %s | %s | %.0f | %s | %s | %s |\n", k.bench, k.workload, k.tool, median(s.mbps), spread(s.mbps), rss, ratio)
	}
	return nil
}

func isRunner(tool string) bool { return tool == "runner" || strings.HasPrefix(tool, "runner-") }
