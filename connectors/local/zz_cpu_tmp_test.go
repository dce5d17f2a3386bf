package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestTmpCPU(t *testing.T) {
	files := map[string]string{}
	for i := 0; i < 2000; i++ {
		files[fmt.Sprintf("d%d/f%d.txt", i%20, i)] = "x"
	}
	src, dir := newTestSource(t, files, func(c *SourceConfig) { c.Watch = true; c.StableFor = 200 * time.Millisecond })
	ctx := context.Background()
	for i := 0; i < 2000; i++ {
		if _, err := src.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	go func() { src.Next(ctx) }()
	c0 := cpuTime()
	time.Sleep(3 * time.Second)
	t.Logf("idle: %v CPU in 3s", cpuTime()-c0)
	// a writer appending continuously
	f, _ := os.Create(filepath.Join(dir, "busy.bin"))
	buf := make([]byte, 4096)
	c0 = cpuTime()
	w0 := time.Now()
	n := 0
	for time.Since(w0) < 2*time.Second {
		f.Write(buf)
		n++
	}
	f.Close()
	t.Logf("busy writer: %v CPU in 2s (%d writes)", cpuTime()-c0, n)
}
