package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/testkit/ftpd"
)

// TestFTPSRunnerKilledMidUpload SIGKILLs the runner while the ftps plugin
// uploads a 128 MiB file to a real vsftpd, and starts it again: the upload
// continues in the same temporary file from the first part not recorded
// (appended, or written again with REST), and the file arrives once,
// byte-identical, with no temporary file left.
func TestFTPSRunnerKilledMidUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 128 MiB; skipped with -short")
	}
	srv := ftpd.Start(t, ftpd.Options{})
	const size, partSize = 128 << 20, 4 << 20
	dir := t.TempDir()
	in, data, plugins := filepath.Join(dir, "in"), filepath.Join(dir, "data"), filepath.Join(dir, "plugins.d")
	os.MkdirAll(in, 0o755)
	os.MkdirAll(plugins, 0o755)
	if err := os.Symlink(plugin(t, "ftps"), filepath.Join(plugins, "ftps")); err != nil {
		t.Fatal(err)
	}
	out := srv.Mkdir(t, "inbound")
	want := writeRandomFile(t, filepath.Join(in, "big.bin"), size)
	flow := writeFile(t, dir, "ftps.yaml", localFlowHead("ftps", in)+`  - name: partner
    retry:
      initial: 200ms
    ftps:
      host: 127.0.0.1
      port: `+strconv.Itoa(srv.Port)+`
      user: `+srv.User+`
      password: ${FTPS_PASSWORD}
      ca_file: `+srv.CAFile+`
      disable_tls13: true    # vsftpd 3.0 fails TLS 1.3 uploads
      directory: `+out+`
      part_size: 4MiB
      trigger: "{name}.done"
bus:
  compression: none
`)
	t.Setenv("FTPS_PASSWORD", srv.Password)
	args := []string{"run", "--data", data, "--plugins-dir", plugins, "--progress", "none", flow}
	run, js, log := startWatched(t, args, data)
	var doneAtKill int
	for deadline := time.Now().Add(60 * time.Second); doneAtKill == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("no part was recorded within 60s\n%s", log.String())
		}
		_, d, ok := delivery(context.Background(), js, "ftps")
		if !ok || d.Done.Count() < 3 {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if bus.Final(d.State) {
			t.Fatalf("the delivery finished before the runner could be killed (state %s)", d.State)
		}
		if err := run.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		doneAtKill = d.Done.Count()
	}
	run.Wait()
	temps := srv.List(t, "inbound")
	if len(temps) != 1 || !strings.HasSuffix(temps[0], ".tmp") {
		t.Fatalf("after the kill the directory holds %v, want one temporary file", temps)
	}

	run, _, log = startWatched(t, args, data)
	if err := run.Wait(); err != nil {
		t.Fatalf("second run: %v\n%s\nvsftpd:\n%s", err, log.String(), srv.Log())
	}
	if names := srv.List(t, "inbound"); strings.Join(names, ",") != "big.bin,big.bin.done" {
		t.Fatalf("the directory holds %v, want big.bin and its trigger, no temporary file", names)
	}
	if got := fileSHA256(t, filepath.Join(out, "big.bin")); got != want {
		t.Fatalf("delivered sha256 %s, want %s", got, want)
	}
	_, d := finalState(t, data, "ftps")
	if d.State != bus.DeliveryCommitted || d.Resumed < doneAtKill {
		t.Errorf("delivery: state %s, %d parts resumed; want committed, at least %d resumed (recorded before the kill)", d.State, d.Resumed, doneAtKill)
	}
	if strings.Contains(log.String(), "runner replay") {
		t.Errorf("the second run asked for a replay:\n%s", log.String())
	}
	t.Logf("killed with %d of %d parts recorded; %d resumed, %d writes, %d attempts", doneAtKill, size/partSize, d.Resumed, d.Writes, d.Attempts)
}
