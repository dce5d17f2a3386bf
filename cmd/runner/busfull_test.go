package main

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline/bus"
)

// smallDisk is a bus store with little room, and a way to free some.
type smallDisk struct {
	args  []string // the runner's flags to use it
	where string   // how messages name the store
	fix   string   // what they say to do
	free  func()   // frees room
}

// mountSmallDisk puts --data on a 64 MiB tmpfs that other files fill but
// for 24 MiB (the embedded server then takes 18 MiB), when the test runs as
// root and may mount; freeing room removes the other files.
func mountSmallDisk(t *testing.T, dir string) (smallDisk, bool) {
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		return smallDisk{}, false
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", data).CombinedOutput(); err != nil {
		t.Logf("mounting a tmpfs: %v: %s", err, out)
		return smallDisk{}, false
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", data).CombinedOutput(); err != nil {
			t.Errorf("unmounting the tmpfs: %v: %s", err, out)
		}
	})
	ballast := filepath.Join(data, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 40<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	hint := bus.EmbeddedStoreHint("data", "--data")
	return smallDisk{
		args: []string{"--data", "data"}, where: hint.Where, fix: hint.Fix,
		free: func() {
			if err := os.Remove(ballast); err != nil {
				t.Fatal(err)
			}
		},
	}, true
}

// cappedServer is the fallback without root: a NATS server whose JetStream
// store is capped at 16 MiB, which the runner reaches with --nats-url;
// freeing room starts it again on the same store without the cap.
func cappedServer(t *testing.T) smallDisk {
	store := t.TempDir()
	srv, err := bus.StartEmbedded(store, bus.WithMaxStore(16<<20))
	if err != nil {
		t.Fatal(err)
	}
	d := smallDisk{args: []string{"--nats-url", srv.URL()}, where: bus.ServerStore.Where, fix: bus.ServerStore.Fix}
	d.free = func() {
		srv.Shutdown()
		if srv, err = bus.StartEmbedded(store); err != nil {
			t.Fatal(err)
		}
		d.args[1] = srv.URL()
	}
	t.Cleanup(func() { srv.Shutdown() })
	return d
}

// A 200 MiB file through a bus store with less room than the read window
// needs: the runner waits --bus-full-wait for room, fails the file with a
// message that says the bus store is full, where, how much was left and
// what to do, and ends with exit 3 and the file counted failed; status
// --failed lists it with that message, and the source keeps it. Once room
// is freed, a rerun delivers it byte-identical.
func TestBusStoreFullFailsTheFileAndRerunDelivers(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 200 MiB twice")
	}
	dir := t.TempDir()
	disk, ok := mountSmallDisk(t, dir)
	if !ok {
		t.Log("no tmpfs (not root, or mount refused): a NATS server with a capped store instead")
		disk = cappedServer(t)
	}
	writeFile(t, dir, "flow.yaml", localFlowHead("full", "./in", "after: delete")+`  - local:
      path: ./out
`)
	if err := os.MkdirAll(filepath.Join(dir, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "in", "big.bin")
	sum := writeRandomFile(t, in, 200<<20)

	args := func(cmd ...string) []string {
		return append(append(cmd[:1:1], disk.args...), cmd[1:]...)
	}
	start := time.Now()
	cmd, outLog, errLog := startIn(t, dir, args("run", "--progress", "none", "--bus-full-wait", "5s", "--http", "127.0.0.1:0", "flow.yaml")...)
	ended := make(chan error, 1)
	go func() { ended <- cmd.Wait() }()
	// While the store refuses writes, /readyz says so and the gauge is 1.
	listening := regexp.MustCompile(`msg="operations endpoints listening" url=(http://127\.0\.0\.1:\d+) `)
	var base, ready string
	var gauge float64
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && (ready == "" || gauge != 1); time.Sleep(20 * time.Millisecond) {
		if m := listening.FindStringSubmatch(errLog.String()); m != nil {
			base = m[1]
		}
		if base == "" {
			continue
		}
		if code, body, err := httpGet(base + "/readyz"); err == nil && code == http.StatusServiceUnavailable && strings.Contains(body, "the bus store is full") {
			ready = body
		}
		if _, body, err := httpGet(base + "/metrics"); err == nil && strings.Contains(body, "\nmftflow_bus_store_full{flow=\"full\"} 1\n") {
			gauge = 1
		}
	}
	wantReady := regexp.MustCompile(`^not ready\n- flow full: the bus store is full: ` + regexp.QuoteMeta(disk.where) +
		` has refused writes for \d+s \(a file waiting for room fails after 5s\): ` + regexp.QuoteMeta(disk.fix) + "\n$")
	if !wantReady.MatchString(ready) {
		t.Errorf("/readyz while the store is full: %q\nwant it to match %s", ready, wantReady)
	}
	if gauge != 1 {
		t.Error("mftflow_bus_store_full{flow=\"full\"} was never 1")
	}
	var err error
	select {
	case err = <-ended:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the runner did not end\nstderr:\n%s", errLog.String())
	}
	took := time.Since(start)
	stdout, stderr := outLog.String(), errLog.String()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("runner ended with %v, want exit 3\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	if took > 45*time.Second {
		t.Errorf("the run took %s; the wait for room is 5s", took)
	}
	if !strings.HasPrefix(stdout, "full: 0 passed, 1 failed, 0 skipped; ") {
		t.Errorf("summary %q, want the file counted failed", stdout)
	}
	q := regexp.QuoteMeta
	full := `the bus store is full: ` + q(disk.where) + ` refused a write of 1\.0 MiB with \d+\.0 MiB of the file still to go, and no room came for 5s: ` +
		q(disk.fix) + ` \(JetStream: insufficient resources, error 10023\)`
	for _, want := range []string{
		`level=WARN msg="the bus store is full: waiting for room" flow=full file=big\.bin id=\w+ store="` + q(disk.where) + `" waited=0s gives_up_after=5s what_to_do="` + q(disk.fix) + `"`,
		`level=ERROR msg="reading file failed" flow=full file=big\.bin id=\w+ err="publishing chunk \d+: ` + full + `"`,
	} {
		if !regexp.MustCompile(want).MatchString(stderr) {
			t.Errorf("the log has no line matching\n%s\nlog:\n%s", want, stderr)
		}
	}
	if n := strings.Count(stderr, "the bus store is full: waiting for room"); n != 1 {
		t.Errorf("the wait for room is logged %d times, want once:\n%s", n, stderr)
	}
	if _, err := os.Stat(in); err != nil {
		t.Errorf("the source no longer holds the failed file: %v", err)
	}

	stdout, stderr, exit := runRunner(t, dir, args("status", "--failed")...)
	want := regexp.MustCompile(`(?m)^  big\.bin  local  1         big\.bin did not reach the bus: publishing chunk \d+: ` + full + `$`)
	if exit != 0 || !want.MatchString(stdout) {
		t.Errorf("status --failed: exit %d\n%s\nwant a line matching %s\nstderr:\n%s", exit, stdout, want, stderr)
	}

	disk.free()
	stdout, stderr, exit = runRunner(t, dir, args("run", "--progress", "none", "flow.yaml")...)
	if exit != 0 || !strings.HasPrefix(stdout, "full: 1 passed, 0 failed, 0 skipped; ") {
		t.Fatalf("rerun after freeing room: exit %d\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	if got := fileSHA256(t, filepath.Join(dir, "out", "big.bin")); got != sum {
		t.Errorf("delivered sha256 %s, want %s", got, sum)
	}
	if _, err := os.Stat(in); !os.IsNotExist(err) {
		t.Errorf("after: delete left the delivered file at the source: %v", err)
	}
}
