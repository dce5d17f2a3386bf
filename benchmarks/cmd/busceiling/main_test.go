package main

import (
	"regexp"
	"strings"
	"testing"
)

func TestCeiling(t *testing.T) {
	var out strings.Builder
	if err := run([]string{"-data", t.TempDir(), "-chunk-size", "4096", "-bytes", "1000000"}, &out); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^1000000 bytes in \d+\.\d{3}s: \d+\.\d MB/s\n$`).MatchString(out.String()) {
		t.Errorf("output %q", out.String())
	}
}

func TestUsage(t *testing.T) {
	err := run([]string{"-data", t.TempDir()}, &strings.Builder{})
	want := "-data and -bytes are required: busceiling -data DIR -bytes N [-chunk-size N]"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
