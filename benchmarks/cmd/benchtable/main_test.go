package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTable(t *testing.T) {
	in := `cores: 2
goos: linux
goarch: amd64
pkg: github.com/mftflow/mftflow/benchmarks
cpu: AMD EPYC
BenchmarkLocalToLocal/1GiB-random/io.Copy-2 	       1	 491654004 ns/op	2000.00 MB/s
BenchmarkLocalToLocal/1GiB-random/jetstream-2 	       1	 491654004 ns/op	 500.00 MB/s
BenchmarkLocalToLocal/1GiB-random/runner-2  	       1	4804693327 ns/op	 300.00 MB/s	       170.0 peak-RSS-MiB
BenchmarkLocalToLocal/1GiB-random/rclone-2  	       1	3462661541 ns/op	 400.00 MB/s	        59.11 peak-RSS-MiB
BenchmarkLocalToLocal/10000x4KiB-random/runner-2         	       1	4804693327 ns/op	   8.00 MB/s	  2000 files/s	       90.00 peak-RSS-MiB
BenchmarkLocalToLocal/10000x4KiB-random/rclone-2         	       1	4804693327 ns/op	  16.00 MB/s	  4000 files/s	       40.00 peak-RSS-MiB
goos: linux
cpu: AMD EPYC
BenchmarkLocalToLocal/1GiB-random/io.Copy-2 	       1	 491654004 ns/op	3000.00 MB/s
BenchmarkLocalToLocal/1GiB-random/jetstream-2 	       1	 491654004 ns/op	 540.00 MB/s
BenchmarkLocalToLocal/1GiB-random/runner-2
    measure_test.go:20: a log line: with a colon
BenchmarkLocalToLocal/1GiB-random/runner-2  	       1	4804693327 ns/op	 320.00 MB/s	       180.0 peak-RSS-MiB
BenchmarkLocalToLocal/1GiB-random/rclone-2  	       1	3462661541 ns/op	 400.00 MB/s	        59.11 peak-RSS-MiB
BenchmarkLocalToLocal/10000x4KiB-random/runner-2         	       1	4804693327 ns/op	  10.00 MB/s	  2500 files/s	       100.0 peak-RSS-MiB
BenchmarkLocalToLocal/10000x4KiB-random/rclone-2         	       1	4804693327 ns/op	  16.00 MB/s	  4000 files/s	       40.00 peak-RSS-MiB
BenchmarkPluginSink/1GiB-random/built-in-2  	       1	3462661541 ns/op	 300.00 MB/s	       170.0 peak-RSS-MiB
BenchmarkPluginSink/1GiB-random/runner-plugin-2  	       1	3462661541 ns/op	 270.00 MB/s	       171.0 peak-RSS-MiB
PASS
`
	var out strings.Builder
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	want := `Machine: cores 2, goos linux, goarch amd64, cpu AMD EPYC.

Medians of 2 runs; spread is min–max MB/s. A ratio compares the runner's median MB/s with a baseline's in the same benchmark and workload; the bytes and files being the same, it is also the ratio of files/s.

| benchmark | workload | tool | MB/s | spread | files/s | peak RSS MiB | runner ÷ baseline |
|---|---|---|---:|---:|---:|---:|---|
| LocalToLocal | 1GiB-random | io.Copy | 2500 | 2000–3000 | - | - | - |
| LocalToLocal | 1GiB-random | jetstream | 520 | 500–540 | - | - | - |
| LocalToLocal | 1GiB-random | runner | 310 | 300–320 | - | 175 | 0.12× io.Copy, 0.60× jetstream, 0.78× rclone |
| LocalToLocal | 1GiB-random | rclone | 400 | 400–400 | - | 59.1 | - |
| LocalToLocal | 10000x4KiB-random | runner | 9.00 | 8.00–10.0 | 2250 | 95.0 | 0.56× rclone |
| LocalToLocal | 10000x4KiB-random | rclone | 16.0 | 16.0–16.0 | 4000 | 40.0 | - |
| PluginSink | 1GiB-random | built-in | 300 | - | - | 170 | - |
| PluginSink | 1GiB-random | runner-plugin | 270 | - | - | 171 | 0.90× built-in |
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestNoResults(t *testing.T) {
	err := run(strings.NewReader("PASS\n"), &strings.Builder{})
	if err == nil || err.Error() != "no benchmark results in the input" {
		t.Errorf("got %v", err)
	}
}

func TestBadValue(t *testing.T) {
	in := "BenchmarkLocalToLocal/1GiB-random/runner-2 1 4804693327 ns/op fast MB/s\n"
	err := run(strings.NewReader(in), &strings.Builder{})
	want := `BenchmarkLocalToLocal/1GiB-random/runner-2: value "fast" of MB/s is not a number`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
