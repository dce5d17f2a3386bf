package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/minio"
	"github.com/mftflow/mftflow/testkit/sshd"
)

// runner run --once takes the files each source holds now and exits, for
// sources that would otherwise watch for ever: local, S3, SFTP (a plugin)
// and the Thru pickup queue.
func TestOnceTakesWhatIsThereNow(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO, sshd and the Thru simulator; skipped with -short")
	}
	files := map[string]string{"a.csv": "alpha\n", "b.csv": "bravo\n"}
	for _, c := range []struct {
		name   string
		source func(t *testing.T, dir string) string // puts files there, returns the source block
	}{
		{"local", func(t *testing.T, dir string) string {
			for name, content := range files {
				writeFile(t, dir, "in/"+name, content)
			}
			return "  local: {path: ./in, stable_for: 0s}\n"
		}},
		{"s3", func(t *testing.T, dir string) string {
			srv := minio.StartMinIO(t)
			for name, content := range files {
				_, err := srv.Client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("in/" + name), Body: strings.NewReader(content)})
				if err != nil {
					t.Fatal(err)
				}
			}
			return "  s3: {bucket: " + srv.Bucket + ", prefix: in/, endpoint: " + srv.Endpoint + ", path_style: true, region: " + minio.Region +
				", access_key_id: " + minio.AccessKey + ", secret_access_key: " + minio.SecretKey + "}\n"
		}},
		{"sftp", func(t *testing.T, dir string) string {
			srv := sshd.Start(t)
			for name, content := range files {
				srv.WriteFile(t, path.Join("in", name), []byte(content))
			}
			plugins := filepath.Join(dir, "plugins.d")
			os.MkdirAll(plugins, 0o755)
			if err := os.Symlink(plugin(t, "sftp"), filepath.Join(plugins, "sftp")); err != nil {
				t.Fatal(err)
			}
			return "  sftp: {host: " + srv.Host + ", port: " + strconv.Itoa(srv.Port) + ", user: " + srv.User +
				", private_key: " + srv.ClientKey + ", known_hosts: " + srv.KnownHostsFile + ", directory: " + srv.Path("in") + ", stable_for: 0s}\n"
		}},
		{"thru", func(t *testing.T, dir string) string {
			site := startThrusim(t, dir)
			for name, content := range files {
				req, _ := http.NewRequest(http.MethodPost, site.url+"/_admin/pickup/TRN1?name="+name, strings.NewReader(content))
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("adding a pickup: %v %v", err, resp)
				}
				resp.Body.Close()
			}
			return "  thru: {base_url: " + site.url + ", flow_code: TRN1, site_access_key: kill-access, flow_secret_key: kill-secret, " +
				"aes_key: 000102030405060708090a0b0c0d0e0f, poll_interval: 100ms, spool_dir: ./spool}\n"
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			flow := writeFile(t, dir, "flow.yaml", "name: once\nsource:\n"+c.source(t, dir)+"sinks:\n  - local: {path: ./out}\n")
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			stdout, stderr, exit := runRunnerContext(ctx, t, dir, "run", "--once", "--progress", "none", "--plugins-dir", filepath.Join(dir, "plugins.d"), flow)
			if exit != 0 || !strings.HasPrefix(stdout, "once: 2 passed, 0 failed, 0 skipped; ") {
				t.Fatalf("exit %d (context: %v)\nstdout:\n%s\nstderr:\n%s", exit, ctx.Err(), stdout, stderr)
			}
			for name, content := range files {
				if got, err := os.ReadFile(filepath.Join(dir, "out", name)); err != nil || string(got) != content {
					t.Errorf("out/%s: %q, %v", name, got, err)
				}
			}
		})
	}
}

// A flow with a schedule polls at its cron ticks, each tick taking what is
// there then; runner status shows the next poll.
func TestSchedulePollsAtTicks(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "in/first.csv", "1\n")
	flow := writeFile(t, dir, "flow.yaml", `name: ticks
schedule:
  cron: "@every 2s"
  time_zone: UTC
source:
  local: {path: `+filepath.Join(dir, "in")+`, stable_for: 0s, after: delete}
sinks:
  - local: {path: `+filepath.Join(dir, "out")+`}
`)
	data := filepath.Join(dir, "data")
	run, js, log := startWatched(t, []string{"run", "--data", data, "--progress", "none", flow}, data)
	waitFor := func(name string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if _, err := os.Stat(filepath.Join(dir, "out", name)); err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not delivered within 30s\n%s", name, log.String())
			}
		}
	}
	waitFor("first.csv")
	writeFile(t, dir, "in/second.csv", "2\n")
	waitFor("second.csv")
	st, err := engine.ReadStatus(t.Context(), js, "ticks")
	if err != nil || len(st) != 1 || st[0].Poll == nil || st[0].Poll.Next.IsZero() {
		t.Fatalf("status: %+v, %v; want the next poll", st, err)
	}
	run.Process.Signal(os.Interrupt)
	if err := run.Wait(); err != nil {
		t.Fatalf("runner: %v\n%s", err, log.String())
	}
	if got := strings.Count(log.String(), `msg="next poll"`); got < 2 {
		t.Errorf("%d polls logged, want at least 2:\n%s", got, log.String())
	}
	stdout, _, exit := runRunner(t, dir, "status", "--data", data, "--flow", "ticks")
	if exit != 0 || !strings.Contains(stdout, "  next poll 20") {
		t.Errorf("runner status exit %d:\n%s", exit, stdout)
	}
}

// A sink with checksum: sha256 gets NAME.sha256 beside each file, which
// sha256sum -c accepts, and one with md5 NAME.md5 for md5sum -c: small
// files (delivered in groups), a file of many chunks and an empty one.
func TestChecksumFilesBesideEachFile(t *testing.T) {
	sha256sum, err := exec.LookPath("sha256sum")
	if err != nil {
		t.Skip("sha256sum (coreutils) not found")
	}
	dir := t.TempDir()
	writeFile(t, dir, "in/a.csv", "alpha\n")
	writeFile(t, dir, "in/sub/b.csv", "bravo\n")
	writeFile(t, dir, "in/empty.dat", "")
	if err := os.WriteFile(filepath.Join(dir, "in/big.bin"), testkit.RandomContent(3, 5<<20+7), 0o644); err != nil {
		t.Fatal(err)
	}
	flow := writeFile(t, dir, "flow.yaml", `name: sums
source:
  local: {path: ./in, watch: false, stable_for: 0s}
sinks:
  - local: {path: ./out}
    checksum: sha256
  - local: {path: ./out-md5}
    checksum: md5
`)
	stdout, stderr, exit := runRunner(t, dir, "run", "--progress", "none", flow)
	if exit != 0 || !strings.HasPrefix(stdout, "sums: 4 passed") {
		t.Fatalf("exit %d\n%s\n%s", exit, stdout, stderr)
	}
	for _, c := range []struct{ tool, out, ext string }{{sha256sum, "out", ".sha256"}, {"md5sum", "out-md5", ".md5"}} {
		for _, name := range []string{"a.csv", "sub/b.csv", "empty.dat", "big.bin"} {
			cmd := exec.Command(c.tool, "-c", filepath.Base(name)+c.ext)
			cmd.Dir = filepath.Join(dir, c.out, filepath.Dir(name))
			if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != filepath.Base(name)+": OK" {
				t.Errorf("%s -c %s%s: %v\n%s", c.tool, name, c.ext, err, out)
			}
		}
		if got := len(listFiles(t, filepath.Join(dir, c.out))); got != 8 {
			t.Errorf("%s holds %d files, want 8 (four and their checksum files)", c.out, got)
		}
	}
}

// TestVerifyChecksumPairs runs a flow whose files come with checksum files:
// one there before its file is taken, one written while its file waits, one
// for a name with a newline (coreutils' escaped line), and one that does
// not match. The matching files are delivered and deleted at the source
// with their checksum files; the mismatch fails and stays with its pair.
func TestVerifyChecksumPairs(t *testing.T) {
	dir := t.TempDir()
	sumLine := func(content, name string) string {
		s := sha256.Sum256([]byte(content))
		return pipeline.ChecksumLine(hex.EncodeToString(s[:]), name)
	}
	odd := "odd\nname.csv"
	writeFile(t, dir, "in/a.csv", "alpha\n")
	writeFile(t, dir, "in/a.csv.sha256", sumLine("alpha\n", "a.csv"))
	writeFile(t, dir, "in/sub/late.csv", "late\n")
	writeFile(t, dir, "in/"+odd, "odd\n")
	writeFile(t, dir, "in/"+odd+".sha256", sumLine("odd\n", odd))
	writeFile(t, dir, "in/c.csv", "charlie\n")
	writeFile(t, dir, "in/c.csv.sha256", sumLine("tampered\n", "c.csv"))
	info, err := os.Stat(filepath.Join(dir, "in/a.csv"))
	if err != nil {
		t.Fatal(err)
	}
	aTime := info.ModTime()
	flow := writeFile(t, dir, "flow.yaml", `name: pairs
source:
  local: {path: ./in, watch: false, stable_for: 0s, after: delete}
stages:
  - verify: {timeout: 8s, poll: 100ms}
sinks:
  - local: {path: ./out}
`)
	go func() {
		time.Sleep(3 * time.Second) // after the listing, on all but a very slow start
		writeFile(t, dir, "in/sub/.late.tmp", sumLine("late\n", "late.csv"))
		os.Rename(filepath.Join(dir, "in/sub/.late.tmp"), filepath.Join(dir, "in/sub/late.csv.sha256"))
	}()
	stdout, stderr, exit := runRunner(t, dir, "run", "--progress", "none", flow)
	// The late checksum file is skipped too if the listing came after it.
	if exit != 3 || !(strings.HasPrefix(stdout, "pairs: 3 passed, 1 failed, 3 skipped; ") || strings.HasPrefix(stdout, "pairs: 3 passed, 1 failed, 4 skipped; ")) {
		t.Fatalf("exit %d\n%s\n%s", exit, stdout, stderr)
	}
	if want := `verify: sha256 of "c.csv" is ` + testkit.SHA256Hex([]byte("charlie\n")) + `, but its checksum file "c.csv.sha256" says ` + testkit.SHA256Hex([]byte("tampered\n")); !strings.Contains(stderr, strings.ReplaceAll(want, `"`, `\"`)) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	for name, want := range map[string]string{"a.csv": "alpha\n", "sub/late.csv": "late\n", odd: "odd\n"} {
		if got, err := os.ReadFile(filepath.Join(dir, "out", name)); err != nil || string(got) != want {
			t.Errorf("out/%q: %q, %v", name, got, err)
		}
	}
	if got, want := listFiles(t, filepath.Join(dir, "out")), 3; len(got) != want {
		t.Errorf("out holds %q, want the %d verified files only", got, want)
	}
	if diff := cmp.Diff([]string{"c.csv", "c.csv.sha256"}, listFiles(t, filepath.Join(dir, "in"))); diff != "" {
		t.Errorf("left at the source (-want +got):\n%s", diff)
	}

	// A runner killed after deleting a checksum file but before its file
	// leaves the file there: the next run knows it, acks it again without
	// its checksum file, and delivers nothing twice. (A small file is
	// read, through verify, before its manifest is looked at, so this run
	// waits verify's timeout for the checksum file first.)
	writeFile(t, dir, "in/a.csv", "alpha\n")
	if err := os.Chtimes(filepath.Join(dir, "in/a.csv"), aTime, aTime); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "out/a.csv"))
	stdout, stderr, exit = runRunner(t, dir, "run", "--progress", "none", flow)
	if exit != 3 || !strings.HasPrefix(stdout, "pairs: 0 passed, 1 failed, 0 skipped, 2 already done (not sent again); ") {
		t.Fatalf("again: exit %d\n%s\n%s", exit, stdout, stderr)
	}
	if diff := cmp.Diff([]string{"c.csv", "c.csv.sha256"}, listFiles(t, filepath.Join(dir, "in"))); diff != "" {
		t.Errorf("left at the source after the second run (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(dir, "out/a.csv")); err == nil {
		t.Error("a.csv was delivered again")
	}
}
