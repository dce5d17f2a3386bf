package engine_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// A program embeds the engine: an embedded NATS server, a flow built in Go
// with the program's own stage in the middle, and a wait for the end.
func ExampleEngine_Start() {
	dir, _ := os.MkdirTemp("", "mftflow-example")
	defer os.RemoveAll(dir)
	srv, err := bus.StartEmbedded(dir)
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()

	source := testkit.NewMemorySource(map[string][]byte{
		"orders.csv": []byte("id,amount\n1,12.50\n"),
		"notes.txt":  []byte("not for partners\n"),
	}, true)
	sink := testkit.NewMemorySink()
	// The program's own stage: keep CSV files, upper-case them.
	upper := pipeline.StageFunc(func(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
		if !strings.HasSuffix(f.Name, ".csv") {
			return f, nil, fmt.Errorf("only CSV leaves: %w", pipeline.ErrSkip)
		}
		b, err := io.ReadAll(r)
		f.Size = int64(len(b))
		return f, strings.NewReader(strings.ToUpper(string(b))), err
	})

	eng, err := engine.New(nc, engine.Options{})
	if err != nil {
		panic(err)
	}
	run, err := eng.Start(context.Background(), pipeline.Flow{
		Name:   "example",
		Source: pipeline.SourceOf(source),
		Stages: []pipeline.Component{pipeline.StageOf(upper)},
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("memory", sink)},
	})
	if err != nil {
		panic(err)
	}
	if err := run.Wait(); err != nil { // the source is finite: Wait returns when all is done
		panic(err)
	}
	for name, data := range sink.Files() {
		fmt.Printf("%s: %q\n", name, data)
	}
	var outcomes []string
	for name, o := range source.Acked() {
		outcomes = append(outcomes, name+" "+o.Status.String())
	}
	sort.Strings(outcomes)
	fmt.Println(outcomes)
	// Output:
	// orders.csv: "ID,AMOUNT\n1,12.50\n"
	// [notes.txt skipped orders.csv passed]
}

// A source that never ends runs until Stop, which finishes or checkpoints
// what is in flight; the next Start resumes it.
func ExampleRun_Stop() {
	dir, _ := os.MkdirTemp("", "mftflow-example")
	defer os.RemoveAll(dir)
	srv, _ := bus.StartEmbedded(dir)
	defer srv.Shutdown()
	nc, _ := nats.Connect(srv.URL())
	defer nc.Close()

	source := testkit.NewMemorySource(nil, false) // waits for more files
	sink := testkit.NewMemorySink()
	eng, _ := engine.New(nc, engine.Options{})
	run, err := eng.Start(context.Background(), pipeline.Flow{
		Name:   "watching",
		Source: pipeline.SourceOf(source),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("memory", sink)},
	})
	if err != nil {
		panic(err)
	}
	source.Add("late.txt", []byte("arrived while running\n"))
	for len(source.Acked()) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run.Stop(ctx); err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", sink.Files()["late.txt"])
	// Output: "arrived while running\n"
}

// A program follows every step of its flow's files in Go: Flow.Events
// gets the same events the runner's audit trail and notifications get.
func ExampleEngine_Start_events() {
	dir, _ := os.MkdirTemp("", "mftflow-example")
	defer os.RemoveAll(dir)
	srv, err := bus.StartEmbedded(dir)
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()

	source := testkit.NewMemorySource(map[string][]byte{"orders.csv": []byte("id,amount\n1,12.50\n")}, true)
	var mu sync.Mutex
	var steps []string
	onEvent := pipeline.EventFunc(func(ev pipeline.Event) {
		mu.Lock()
		defer mu.Unlock()
		steps = append(steps, strings.Join(strings.Fields(fmt.Sprintf("%s %s %s", ev.Kind, ev.Sink, ev.Outcome)), " "))
	})
	eng, err := engine.New(nc, engine.Options{})
	if err != nil {
		panic(err)
	}
	run, err := eng.Start(context.Background(), pipeline.Flow{
		Name:   "events",
		Source: pipeline.SourceOf(source),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("partner", testkit.NewMemorySink())},
		Events: []pipeline.EventSink{onEvent},
	})
	if err != nil {
		panic(err)
	}
	if err := run.Wait(); err != nil {
		panic(err)
	}
	fmt.Println(strings.Join(steps, "\n"))
	// Output:
	// discovered
	// read
	// attempt partner
	// committed partner
	// acked passed
}
