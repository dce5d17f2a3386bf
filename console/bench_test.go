package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/console"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/testkit"
)

// The console over a flow of 10,000 files, 100 of whose deliveries to the
// partner failed and 50 of which are under way: how long the failures page
// takes to render, and how long a change to a delivery record takes to
// reach an open event stream (the KV watch, the flow's status made again
// from 10,000 files, the fragment rendered and sent).
const (
	benchFiles    = 10_000
	benchFailures = 100
	benchActive   = 50
)

func benchConsole(b *testing.B) (jetstream.KeyValue, *console.Console, string) {
	nc := testkit.ConnectNATS(b, testkit.StartNATS(b))
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bus.Names{Flow: "big"}.Bucket()})
	if err != nil {
		b.Fatal(err)
	}
	writeBenchState(b, kv)
	access, _, viewTok := accessForTests(b)
	c, err := console.New(console.Options{JS: js, Access: access, UpdateInterval: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	// Wait until the console holds every record.
	waitFor(b, 2*time.Minute, "the console to read the flow", func() bool {
		code, body := get(c, "/console/flows/big", viewTok)
		return code == http.StatusOK && strings.Contains(body, fmt.Sprintf(`data-live="files">%d<`, benchFiles)) &&
			strings.Contains(body, fmt.Sprintf(`data-live="failed">%d<`, benchFailures))
	})
	return kv, c, viewTok
}

// writeBenchState writes the records a run of the flow leaves: a manifest
// per file, a delivery per file and sink.
func writeBenchState(b *testing.B, kv jetstream.KeyValue) {
	ctx := context.Background()
	now := time.Now().UTC()
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	for range 8 {
		wg.Go(func() {
			for i := range jobs {
				if err := putBenchFile(ctx, kv, i, now); err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
			}
		})
	}
	for i := range benchFiles {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if failed != nil {
		b.Fatal(failed)
	}
}

func putBenchFile(ctx context.Context, kv jetstream.KeyValue, i int, now time.Time) error {
	id := fmt.Sprintf("%032x", i)
	m := bus.Manifest{ID: id, Name: fmt.Sprintf("orders/2026/%05d.csv", i), Size: 1 << 20, Chunks: 1, ChunkSize: 1 << 20,
		Sinks: []string{"archive", "partner"}, State: bus.FileDone, Outcome: "passed", Created: now, Updated: now, Finished: now,
		SHA256: strings.Repeat("ab", 32)}
	archive := bus.Delivery{File: id, Sink: "archive", Name: m.Name, State: bus.DeliveryCommitted, Bytes: m.Size, Attempts: 1, Updated: now}
	partner := archive
	partner.Sink = "partner"
	switch {
	case i < benchFailures:
		m.Outcome = "mixed"
		partner.State, partner.Bytes, partner.Attempts = bus.DeliveryFailed, 0, 5
		partner.Error = fmt.Sprintf("opening %s on sink partner: 550 %s: permission denied", m.Name, m.Name)
	case i < benchFailures+benchActive:
		m.State, m.Outcome = bus.FileReady, ""
		partner.State, partner.Bytes, partner.PartSize = bus.DeliveryActive, 0, 256<<10
		partner.Done = bus.Bitmap(nil).Set(0).Set(1)
		partner.Owner = "runner-a/1"
	}
	for key, v := range map[string]any{bus.ManifestKey(id): m, bus.DeliveryKey(id, "archive"): archive, bus.DeliveryKey(id, "partner"): partner} {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := kv.Put(ctx, key, data); err != nil {
			return fmt.Errorf("writing %s: %w", key, err)
		}
	}
	return nil
}

func get(h http.Handler, path, token string) (int, string) {
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

func BenchmarkConsolePages(b *testing.B) {
	_, c, tok := benchConsole(b)
	for _, p := range []struct{ name, path, want string }{
		{"failures", "/console/flows/big/failures", fmt.Sprintf("%d failures, the latest first", benchFailures)},
		{"flow", "/console/flows/big", fmt.Sprintf("%d files under way", benchActive)},
		{"overview", "/console/", "/console/flows/big"},
		{"search", "/console/search?q=orders/2026/0*&status=mixed", fmt.Sprintf("%d files found", benchFailures)},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				code, body := get(c, p.path, tok)
				if code != http.StatusOK || !strings.Contains(body, p.want) {
					b.Fatalf("%s: %d, without %q", p.path, code, p.want)
				}
			}
		})
	}
}

// BenchmarkConsoleUpdate measures a change to one delivery record until an
// open event stream of the failures page sends the new list.
func BenchmarkConsoleUpdate(b *testing.B) {
	kv, c, tok := benchConsole(b)
	srv := httptest.NewServer(c)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/console/events?view=failures&flow=big", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan string, 16)
	go readEvents(resp, events)
	<-events // the list as it is

	id := fmt.Sprintf("%032x", benchFailures+benchActive) // a passed file
	rec := bus.Delivery{File: id, Sink: "partner", Name: "x", State: bus.DeliveryFailed, Attempts: 5, Updated: time.Now().UTC()}
	i := 0
	for b.Loop() {
		i++
		rec.Error = fmt.Sprintf("change %d", i)
		data, _ := json.Marshal(rec)
		if _, err := kv.Put(context.Background(), bus.DeliveryKey(id, "partner"), data); err != nil {
			b.Fatal(err)
		}
		for ev := range events {
			if strings.Contains(ev, rec.Error+"<") {
				break
			}
		}
	}
}

// readEvents sends the data of each server-sent event to out.
func readEvents(resp *http.Response, out chan<- string) {
	defer close(out)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "data: "):
			data.WriteString(line[len("data: "):] + "\n")
		case line == "" && data.Len() > 0:
			out <- data.String()
			data.Reset()
		}
	}
}
