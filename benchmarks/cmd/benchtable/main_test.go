package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTable(t *testing.T) {
	in := `goos: linux
cpu: AMD EPYC
BenchmarkLocalToLocal/1GiB-random/io.Copy-2 	       1	 491654004 ns/op	2000.00 MB/s
BenchmarkLocalToLocal/1GiB-random/io.Copy-2 	       1	 491654004 ns/op	3000.00 MB/s
BenchmarkLocalToLocal/1GiB-random/runner-2  	       1	4804693327 ns/op	 300.00 MB/s	       170.0 peak-RSS-MiB
BenchmarkLocalToLocal/1GiB-random/runner-2  	       1	4804693327 ns/op	 320.00 MB/s	       180.0 peak-RSS-MiB
BenchmarkLocalToLocal/1GiB-random/rclone-2  	       1	3462661541 ns/op	 400.00 MB/s	        59.11 peak-RSS-MiB
BenchmarkLocalToLocal/1GiB-random/rclone-2  	       1	3462661541 ns/op	 400.00 MB/s	        59.11 peak-RSS-MiB
PASS
`
	var out strings.Builder
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	want := `Machine: AMD EPYC. Medians of 2 runs; spread is min–max MB/s.

| benchmark | workload | tool | MB/s | spread | peak RSS MiB | runner ÷ baseline |
|---|---|---|---:|---:|---:|---|
| LocalToLocal | 1GiB-random | io.Copy | 2500 | 2000–3000 | - | - |
| LocalToLocal | 1GiB-random | runner | 310 | 300–320 | 175 | 0.12× io.Copy, 0.78× rclone |
| LocalToLocal | 1GiB-random | rclone | 400 | 400–400 | 59 | - |
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
