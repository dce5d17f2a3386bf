package main

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline/engine"
)

func TestFormatProgress(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name  string
		stats engine.Stats
		rate  float64
		want  string
	}{
		{
			name:  "nothing yet",
			stats: engine.Stats{Flow: "quickstart"},
			want:  "quickstart: 0/0 files, 0 B, 0 B/s, ETA -, 0 failed",
		},
		{
			name: "under way",
			stats: engine.Stats{
				Flow: "quickstart", FilesSeen: 10, FilesPassed: 3, BytesKnown: 1 << 30, BytesRead: 200 * mib,
				Sinks: []engine.SinkStats{{Name: "local", BytesWritten: 120 * mib}},
			},
			rate: 45.2 * mib,
			want: "quickstart: 3/10 files, 120.0 MiB / 1.0 GiB, 45.2 MiB/s, ETA 20s, 0 failed",
		},
		{
			name: "slowest sink counts, failures add up",
			stats: engine.Stats{
				Flow: "orders", FilesSeen: 5, FilesPassed: 1, FilesFailed: 1, FilesMixed: 1, FilesSkipped: 1,
				BytesKnown: 100 * mib,
				Sinks: []engine.SinkStats{
					{Name: "fast", BytesWritten: 90 * mib},
					{Name: "slow", BytesWritten: 40 * mib},
				},
			},
			rate: 1 * mib,
			want: "orders: 4/5 files, 40.0 MiB / 100.0 MiB, 1.0 MiB/s, ETA 1m0s, 2 failed",
		},
		{
			name: "stalled",
			stats: engine.Stats{
				Flow: "f", FilesSeen: 1, BytesKnown: 4096,
				Sinks: []engine.SinkStats{{Name: "s", BytesWritten: 1024}},
			},
			want: "f: 0/1 files, 1.0 KiB / 4.0 KiB, 0 B/s, ETA -, 0 failed",
		},
		{
			name: "more written than known (sizes unknown)",
			stats: engine.Stats{
				Flow: "f", FilesSeen: 2, BytesKnown: 1000,
				Sinks: []engine.SinkStats{{Name: "s", BytesWritten: 5000}},
			},
			rate: 2048,
			want: "f: 0/2 files, 4.9 KiB, 2.0 KiB/s, ETA -, 0 failed",
		},
		{
			name:  "no sink statistics: bytes on the bus",
			stats: engine.Stats{Flow: "f", FilesSeen: 1, BytesKnown: 2048, BytesRead: 2048},
			want:  "f: 0/1 files, 2.0 KiB / 2.0 KiB, 0 B/s, ETA 0s, 0 failed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatProgress(tt.stats, tt.rate); got != tt.want {
				t.Errorf("formatProgress:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestFormatETA(t *testing.T) {
	tests := []struct {
		remaining int64
		rate      float64
		want      string
	}{
		{0, 0, "0s"},
		{-5, 10, "0s"},
		{100, 0, "-"},
		{100, 10, "10s"},
		{90, 1, "1m30s"},
		{3725, 1, "1h2m5s"},
		{1 << 50, 1, "-"},
	}
	for _, tt := range tests {
		if got := formatETA(tt.remaining, tt.rate); got != tt.want {
			t.Errorf("formatETA(%d, %v) = %q, want %q", tt.remaining, tt.rate, got, tt.want)
		}
	}
}

func TestFormatSummary(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name    string
		stats   engine.Stats
		elapsed time.Duration
		want    string
	}{
		{
			name: "all passed",
			stats: engine.Stats{
				Flow: "quickstart", FilesSeen: 10, FilesPassed: 10,
				Sinks: []engine.SinkStats{{Name: "local", BytesWritten: 100 * mib}},
			},
			elapsed: 4 * time.Second,
			want:    "quickstart: 10 passed, 0 failed, 0 skipped; 100.0 MiB in 4s, 25.0 MiB/s",
		},
		{
			name: "mixed and unfinished",
			stats: engine.Stats{
				Flow: "orders", FilesPassed: 5, FilesFailed: 1, FilesMixed: 2, FilesSkipped: 3, FilesInFlight: 1,
				Sinks: []engine.SinkStats{{Name: "a", BytesWritten: 3 * mib}, {Name: "b", BytesWritten: 2 * mib}},
			},
			elapsed: 90*time.Second + 400*time.Millisecond,
			want:    "orders: 5 passed, 1 failed, 2 partly failed, 3 skipped, 1 unfinished; 2.0 MiB in 1m30s, 22.7 KiB/s",
		},
		{
			name:    "run before",
			stats:   engine.Stats{Flow: "again", FilesSeen: 3, FilesPassed: 1, FilesEarlier: 2},
			elapsed: time.Second,
			want:    "again: 1 passed, 0 failed, 0 skipped, 2 already done (not sent again); 0 B in 1s, 0 B/s",
		},
		{
			name:    "nothing",
			stats:   engine.Stats{Flow: "idle"},
			elapsed: 1234 * time.Millisecond,
			want:    "idle: 0 passed, 0 failed, 0 skipped; 0 B in 1.2s, 0 B/s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatSummary(tt.stats, tt.elapsed); got != tt.want {
				t.Errorf("formatSummary:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestRateMeter(t *testing.T) {
	start := time.Unix(1000, 0)
	m := rateMeter{at: start}
	if got := m.update(100, start.Add(10*time.Second)); got != 10 {
		t.Errorf("first rate = %v, want 10", got)
	}
	if got := m.update(100, start.Add(20*time.Second)); got != 0 {
		t.Errorf("idle rate = %v, want 0", got)
	}
	if got := m.update(400, start.Add(21*time.Second)); got != 300 {
		t.Errorf("rate = %v, want 300", got)
	}
	if got := m.update(500, start.Add(21*time.Second)); got != 0 {
		t.Errorf("rate over no time = %v, want 0", got)
	}
}

func TestResolveProgressMode(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := resolveProgressMode(progressAuto, f); got != progressPlain {
		t.Errorf("auto on a file = %q, want plain", got)
	}
	if got := resolveProgressMode(progressAuto, &bytes.Buffer{}); got != progressPlain {
		t.Errorf("auto on a buffer = %q, want plain", got)
	}
	if got := resolveProgressMode(progressBar, f); got != progressBar {
		t.Errorf("bar = %q, want bar", got)
	}
}
