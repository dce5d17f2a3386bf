package engine_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// ledger counts the bytes sinks read from the engine and checks, at every
// read, that each sink's bytes and all of them stay within their rates
// since start. The bytes are counted after the read returns them, so the
// check holds whatever the machine's load: a slow machine only reads later.
type ledger struct {
	t     *testing.T
	start time.Time
	rates map[string]int64 // sink name, or "" for all together -> bytes/s
	mu    sync.Mutex
	bytes map[string]int64
}

// slack covers float rounding in the token bucket.
const slack = 1 << 10

func (l *ledger) add(sink string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bytes[sink] += int64(n)
	l.bytes[""] += int64(n)
	elapsed := time.Since(l.start).Seconds()
	for _, k := range []string{sink, ""} {
		if limit, ok := l.rates[k]; ok && float64(l.bytes[k]) > float64(limit)*elapsed+slack {
			l.t.Errorf("%q: %d bytes after %.3fs: above %d bytes/s", k, l.bytes[k], elapsed, limit)
		}
	}
}

// TestRateLimitsSinksAndFlow delivers files of several parts, one-chunk
// files and a group of small files to two sinks: "a" limited to 256 KiB/s,
// "b" unlimited, and the flow to 512 KiB/s for both together. Neither
// limit is exceeded at any read, whatever the parallelism, and every file
// arrives intact.
func TestRateLimitsSinksAndFlow(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{}
	for i := range 4 {
		files[fmt.Sprintf("big%d.bin", i)] = testkit.RandomContent(int64(i), 160<<10) // 3 chunks
	}
	files["one.bin"] = testkit.RandomContent(10, 60<<10) // 1 chunk
	for i := range 10 {
		files[fmt.Sprintf("small/%d.bin", i)] = testkit.RandomContent(int64(20+i), 4<<10) // a group
	}
	l := &ledger{t: t, start: time.Now(), rates: map[string]int64{"a": 256 << 10, "": 512 << 10}, bytes: map[string]int64{}}
	a, b := testkit.NewMemorySink(), testkit.NewMemorySink()
	sa := pipeline.SinkOf("a", testkit.CountReads(a, func(n int) { l.add("a", n) }))
	sa.Rate = pipeline.Rate{Slots: []pipeline.RateSlot{{Limit: 256 << 10}}}
	sb := pipeline.SinkOf("b", testkit.CountReads(b, func(n int) { l.add("b", n) }))
	run := runToEnd(t, e.engine(t, engine.Options{}), pipeline.Flow{
		Name:   "rate",
		Source: pipeline.SourceOf(testkit.NewMemorySource(files, true)),
		Sinks:  []pipeline.SinkSpec{sa, sb},
		Bus:    pipeline.BusSpec{ChunkSize: 64 << 10},
		Rate:   pipeline.Rate{Slots: []pipeline.RateSlot{{Limit: 512 << 10}}},
	})
	checkDelivered(t, files, a.Files())
	checkDelivered(t, files, b.Files())
	var total int64
	for _, f := range files {
		total += int64(len(f))
	}
	if l.bytes["a"] < total || l.bytes["b"] < total {
		t.Errorf("sinks read %d and %d bytes, want at least %d each", l.bytes["a"], l.bytes["b"], total)
	}
	st := run.Stats()
	if st.Limit != 512<<10 || st.Sinks[0].Limit != 256<<10 || st.Sinks[1].Limit != 0 {
		t.Errorf("limits in Stats: flow %d, sinks %+v; want 512KiB, a 256KiB, b none", st.Limit, st.Sinks)
	}
	t.Logf("%d bytes to each sink in %v", total, time.Since(l.start).Round(time.Millisecond))
}
