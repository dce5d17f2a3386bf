package pipeline_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1048576", 1 << 20},
		{"512B", 512},
		{"512 b", 512},
		{"1KiB", 1 << 10},
		{"1kib", 1 << 10},
		{"1K", 1 << 10},
		{"1k", 1 << 10},
		{"1KB", 1000},
		{"1.5MiB", 3 << 19},
		{"8MiB", 8 << 20},
		{"5MB", 5e6},
		{"1M", 1 << 20},
		{"2GiB", 2 << 30},
		{"1GB", 1e9},
		{"1G", 1 << 30},
		{"1TiB", 1 << 40},
		{"3TB", 3e12},
		{"1T", 1 << 40},
		{"  64 KiB  ", 64 << 10},
		{"0.5KiB", 512},
		{".5KiB", 512},
		{"1.", 1},
		{"0.5", 0},  // fractions of a byte are dropped
		{"1.9B", 1}, // likewise
		{"007", 7},
		{"8388607TiB", 8388607 << 40},
	}
	for _, tt := range tests {
		got, err := pipeline.ParseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSizeErrors(t *testing.T) {
	for _, in := range []string{
		"", " ", "KiB", "-1", "-1KiB", "+1", "1e3", "1 2", "1.2.3", ".", "1PiB", "1EiB", "1KiBs", "1 K i B",
		"1_000", "0x10", "NaN", "Inf", "1,5MiB", "½KiB", "8388608TiB", "9223372036854775807", "99999999999999999999",
	} {
		got, err := pipeline.ParseSize(in)
		want := fmt.Sprintf("invalid size %q: want a number of bytes or a number with a unit (KiB, MiB, GiB, KB, MB, GB)", in)
		if err == nil || err.Error() != want {
			t.Errorf("ParseSize(%q) = %d, %v; want error %s", in, got, err, want)
		}
	}
}

// Whole numbers of bytes go through a float64, so above 2^53 they are rounded.
func TestParseSizePrecision(t *testing.T) {
	const in = "9007199254740993" // 2^53 + 1
	got, err := pipeline.ParseSize(in)
	if err != nil {
		t.Fatal(err)
	}
	if got != 1<<53+1 {
		t.Errorf("ParseSize(%q) = %d, want %d", in, got, int64(1<<53+1))
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{5000, "4.9 KiB"},
		{1 << 20, "1.0 MiB"},
		{3 << 19, "1.5 MiB"},
		{5e6, "4.8 MiB"},
		{1 << 30, "1.0 GiB"},
		{50e9, "46.6 GiB"},
		{1 << 40, "1.0 TiB"},
		{1 << 50, "1.0 PiB"},
		{1 << 60, "1024.0 PiB"},
		{math.MaxInt64, "8192.0 PiB"},
		{-5, "-5 B"},
	}
	for _, tt := range tests {
		if got := pipeline.FormatSize(tt.n); got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

// Sizes printed by FormatSize with a whole number read back exactly.
func TestFormatSizeParsesBack(t *testing.T) {
	for _, n := range []int64{0, 1, 1023, 1 << 10, 1 << 20, 3 << 19, 1 << 30, 1 << 40} {
		s := pipeline.FormatSize(n)
		got, err := pipeline.ParseSize(s)
		if err != nil || got != n {
			t.Errorf("ParseSize(FormatSize(%d) = %q) = %d, %v", n, s, got, err)
		}
	}
}
