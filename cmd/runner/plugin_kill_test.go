package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline/bus"
)

var pluginBuilds sync.Map // package → func() (string, error)

// examplePlugin builds plugins/examples/<name> once and returns its path.
func examplePlugin(t *testing.T, name string) string { return plugin(t, "examples/"+name) }

// plugin builds plugins/<pkg> once and returns its path.
func plugin(t *testing.T, pkg string) string {
	t.Helper()
	name := filepath.Base(pkg)
	build, _ := pluginBuilds.LoadOrStore(pkg, sync.OnceValues(func() (string, error) {
		bin := filepath.Join(filepath.Dir(runnerBin), "plugins", name)
		if out, err := exec.Command("go", "build", "-o", bin, "../../plugins/"+pkg).CombinedOutput(); err != nil {
			return "", fmt.Errorf("%v\n%s", err, out)
		}
		return bin, nil
	}))
	bin, err := build.(func() (string, error))()
	if err != nil {
		t.Fatalf("building the %s plugin: %v", name, err)
	}
	return bin
}

// localfsPlugin builds plugins/examples/localfs once and returns its path.
func localfsPlugin(t *testing.T) string { return examplePlugin(t, "localfs") }

// childPID returns the pid of the process called name whose parent is ppid,
// or 0.
func childPID(ppid int, name string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if s[open+1:close] == name && len(fields) > 1 && fields[1] == strconv.Itoa(ppid) {
			return pid
		}
	}
	return 0
}

// TestPluginKilledMidTransfer SIGKILLs the plugin process serving a flow's
// sink in the middle of a 256 MiB transfer. The runner starts the plugin
// again and the delivery resumes from its recorded parts: the file arrives
// once, byte-identical, and no part recorded before the kill is written
// again.
func TestPluginKilledMidTransfer(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 256 MiB; skipped with -short")
	}
	const size, partSize = 256 << 20, 4 << 20
	const parts = size / partSize
	dir := t.TempDir()
	in, out, data, plugins := filepath.Join(dir, "in"), filepath.Join(dir, "out"), filepath.Join(dir, "data"), filepath.Join(dir, "plugins.d")
	os.MkdirAll(in, 0o755)
	os.MkdirAll(plugins, 0o755)
	if err := os.Symlink(localfsPlugin(t), filepath.Join(plugins, "localfs")); err != nil {
		t.Fatal(err)
	}
	want := writeRandomFile(t, filepath.Join(in, "big.bin"), size)
	flow := writeFile(t, dir, "plugin.yaml", localFlowHead("plugin", in)+`  - name: out
    parallelism: 2
    retry:
      initial: 200ms
    localfs:
      path: `+out+`
      part_size: 4MiB
bus:
  compression: none
`)
	run := exec.Command(runnerBin, "run", "--data", data, "--plugins-dir", plugins, "--progress", "none", flow)
	var log strings.Builder
	run.Stdout, run.Stderr = &log, &log
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer run.Process.Kill()
	waited := make(chan error, 1)
	go func() { waited <- run.Wait() }()

	js := connectRunner(t, data, &log)
	var doneAtKill int
	deadline := time.Now().Add(60 * time.Second)
	for doneAtKill == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no part was recorded within 60s\n%s", log.String())
		}
		_, d, ok := delivery(context.Background(), js, "plugin")
		if !ok || d.Done.Count() < 3 {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if bus.Final(d.State) {
			t.Fatalf("the delivery finished before the plugin could be killed (state %s)", d.State)
		}
		pid := childPID(run.Process.Pid, "localfs")
		if pid == 0 {
			t.Fatalf("no localfs plugin process under the runner (pid %d)", run.Process.Pid)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		doneAtKill = d.Done.Count()
	}

	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("runner: %v\n%s", err, log.String())
		}
	case <-time.After(5 * time.Minute):
		t.Fatalf("the runner did not finish within 5 minutes\n%s", log.String())
	}
	checkOnlyFile(t, out, "big.bin", want)
	if !strings.Contains(log.String(), "plugin process exited; it is started again on the next call") {
		t.Errorf("the runner's log does not tell of the plugin's death:\n%s", log.String())
	}
	_, d := finalState(t, data, "plugin")
	if d.State != bus.DeliveryCommitted || d.Resumed < doneAtKill || d.Writes != parts {
		t.Errorf("delivery: state %s, %d parts resumed, %d part writes; want committed, at least %d resumed (recorded before the kill), exactly %d writes (none written twice)",
			d.State, d.Resumed, d.Writes, doneAtKill, parts)
	}
	t.Logf("killed the plugin with %d of %d parts recorded; %d resumed, %d writes, %d attempts", doneAtKill, parts, d.Resumed, d.Writes, d.Attempts)
}

// connectRunner connects to the embedded NATS server of a runner started
// on data.
func connectRunner(t *testing.T, data string, log *strings.Builder) jetstream.JetStream {
	t.Helper()
	var url []byte
	for deadline := time.Now().Add(30 * time.Second); len(url) == 0 && time.Now().Before(deadline); {
		url, _ = os.ReadFile(filepath.Join(data, "nats.url"))
		time.Sleep(10 * time.Millisecond)
	}
	nc, err := nats.Connect(strings.TrimSpace(string(url)))
	if err != nil {
		t.Fatalf("connecting to the runner's server: %v\n%s", err, log.String())
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	return js
}
