package main

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/audit"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit/ftpd"
	"github.com/mftflow/mftflow/testkit/minio"
)

// The crash harness kills the runner with SIGKILL at random moments of a
// run (a big file among small ones with awkward names, the source deleting
// what it delivered), restarts it at once or after a pause (shorter and
// longer than the source lease's TTL), and after the last kill lets a run
// finish. Then every sink must hold exactly one byte-identical copy of
// every file and nothing else (no temporary file, no second copy), the
// source must be empty, and runner status must say every file passed.
//
// The plan comes from the environment, so that `make soak` runs it long:
//
//	MFTFLOW_CRASH_RUNS   runs per target (default 1)
//	MFTFLOW_CRASH_KILLS  kills per run (default 5)
//	MFTFLOW_CRASH_SIZE   size of the big file (default 256MiB)
//	MFTFLOW_CRASH_SEED   seed of the first run (default: from the clock; logged)
//	MFTFLOW_CRASH_TARGET only this target: local, s3 or thru
//
// Kills come 0.2s–1.5s apart (0.5s–4.5s when the big file is 512 MiB or
// more); a restart comes within 300ms four times in five, else after 3–12s.
type crashPlan struct {
	runs, kills int
	size        int64
	seed        uint64
	target      string
	// small, when set, replaces the big file with this many small files
	// (they travel in groups), and kills come 0.1s–1.2s apart.
	small int
	// payload is the flow's bus.payload ("" for the default, bytes).
	payload string
}

func crashPlanFromEnv(t *testing.T) crashPlan {
	t.Helper()
	p := crashPlan{runs: 1, kills: 5, size: 256 << 20, seed: uint64(time.Now().UnixNano())}
	num := func(name string, into *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				t.Fatalf("%s=%q: want a count", name, v)
			}
			*into = n
		}
	}
	num("MFTFLOW_CRASH_RUNS", &p.runs)
	num("MFTFLOW_CRASH_KILLS", &p.kills)
	if v := os.Getenv("MFTFLOW_CRASH_SIZE"); v != "" {
		n, err := pipeline.ParseSize(v)
		if err != nil {
			t.Fatalf("MFTFLOW_CRASH_SIZE=%q: %v", v, err)
		}
		p.size = n
	}
	if v := os.Getenv("MFTFLOW_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("MFTFLOW_CRASH_SEED=%q: %v", v, err)
		}
		p.seed = n
	}
	p.target = os.Getenv("MFTFLOW_CRASH_TARGET")
	return p
}

// crashTarget is one kind of sink the harness delivers to.
type crashTarget struct {
	name string
	// utf8Only: the sink refuses names that are not UTF-8.
	utf8Only bool
	// sinks returns the flow's sinks section for a run in dir.
	sinks func(t *testing.T, dir string) string
	// check checks that the sinks hold exactly files (name → sha256).
	check func(t *testing.T, dir string, files map[string]string)
	// plugin names the plugin (below plugins/) the sinks need, if any.
	plugin string
}

func TestRandomKillsLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the runner many times; skipped with -short")
	}
	plan := crashPlanFromEnv(t)
	t.Logf("plan: %d runs of %d kills, big file %s, first seed %d (MFTFLOW_CRASH_SEED repeats it)",
		plan.runs, plan.kills, pipeline.FormatSize(plan.size), plan.seed)
	crashTargets(t, plan, localTarget(), s3Target(t), thruTarget(), ftpsTarget())
}

// crashTargets runs the harness's runs of plan against each target.
func crashTargets(t *testing.T, plan crashPlan, targets ...crashTarget) {
	for _, target := range targets {
		if plan.target != "" && plan.target != target.name {
			continue
		}
		t.Run(target.name, func(t *testing.T) {
			for i := range plan.runs {
				seed := plan.seed + uint64(i)
				if !t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) { crashRun(t, target, plan, seed) }) {
					return
				}
			}
		})
	}
}

// TestRandomKillsLoseNothingByReference is the harness with the files read
// by reference: kills land while deliveries read them again from the
// source, which deletes each once every sink has it.
func TestRandomKillsLoseNothingByReference(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the runner many times; skipped with -short")
	}
	plan := crashPlanFromEnv(t)
	plan.payload = pipeline.PayloadReference
	t.Logf("plan: %d runs of %d kills, big file %s by reference, first seed %d (MFTFLOW_CRASH_SEED repeats it)",
		plan.runs, plan.kills, pipeline.FormatSize(plan.size), plan.seed)
	crashTargets(t, plan, localTarget(), s3Target(t))
}

// payloadLine is the bus.payload line of a flow, or nothing for the default.
func payloadLine(payload string) string {
	if payload == "" {
		return ""
	}
	return "  payload: " + payload + "\n"
}

// TestRandomKillsLoseNoSmallFile is the harness on 2,000 small files into
// two local sinks: they travel in groups, and kills land while groups are
// read, written, delivered and acked.
func TestRandomKillsLoseNoSmallFile(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the runner many times; skipped with -short")
	}
	plan := crashPlanFromEnv(t)
	plan.small = 2000
	t.Logf("plan: %d runs of %d kills, %d small files, first seed %d (MFTFLOW_CRASH_SEED repeats it)",
		plan.runs, plan.kills, plan.small, plan.seed)
	for i := range plan.runs {
		seed := plan.seed + uint64(i)
		if !t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) { crashRun(t, localTarget(), plan, seed) }) {
			return
		}
	}
}

// crashRun is one run of the harness against target.
func crashRun(t *testing.T, target crashTarget, plan crashPlan, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	dir := t.TempDir()
	in, data := filepath.Join(dir, "in"), filepath.Join(dir, "data")
	var files map[string]string
	if plan.small > 0 {
		files = smallInput(t, in, "", plan.small, rng, target.utf8Only)
	} else {
		files = crashInput(t, in, plan.size, rng, target.utf8Only)
	}
	flow := writeFile(t, dir, "crash.yaml", localFlowHead("crash", in, "after: delete")+target.sinks(t, dir)+`audit: {}
bus:
  compression: none
`+payloadLine(plan.payload))
	args := []string{"run", "--data", data, "--progress", "none", "--log-level", "info", flow}
	if target.plugin != "" {
		plugins := filepath.Join(dir, "plugins.d")
		os.MkdirAll(plugins, 0o755)
		if err := os.Symlink(plugin(t, target.plugin), filepath.Join(plugins, target.plugin)); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--plugins-dir", plugins}, args...)
	}

	lo, hi := 200*time.Millisecond, 1500*time.Millisecond
	switch {
	case plan.small > 0:
		lo, hi = 100*time.Millisecond, 1200*time.Millisecond
	case plan.size >= 512<<20:
		lo, hi = 500*time.Millisecond, 4500*time.Millisecond
	}
	var logs []string
	for k, run := 0, 0; k < plan.kills; run++ {
		logPath := filepath.Join(dir, fmt.Sprintf("run%02d.log", run))
		logs = append(logs, logPath)
		after := lo + time.Duration(rng.Int64N(int64(hi-lo)))
		exit, killed := runAndKill(t, args, logPath, after)
		if !killed {
			if exit != 0 {
				t.Fatalf("run %d ended by itself with exit %d before its kill\n%s", run, exit, tailOf(logPath))
			}
			// Everything was delivered before the kill: give the next
			// runs more to do, so that every kill lands mid-transfer.
			if plan.small > 0 {
				maps.Copy(files, smallInput(t, in, fmt.Sprintf("more%d-", run), plan.small/4, rng, target.utf8Only))
				t.Logf("run %d finished before its kill at %s; %d small files added", run, after.Round(time.Millisecond), plan.small/4)
				continue
			}
			name := fmt.Sprintf("big%d.bin", run)
			files[name] = writeSeededFile(t, filepath.Join(in, name), plan.size, rng.Uint64())
			t.Logf("run %d finished before its kill at %s; %s added", run, after.Round(time.Millisecond), name)
			continue
		}
		k++
		pause := time.Duration(rng.Int64N(int64(300 * time.Millisecond)))
		if rng.IntN(5) == 0 {
			pause = 3*time.Second + time.Duration(rng.Int64N(int64(9*time.Second)))
		}
		t.Logf("run %d killed after %s (kill %d); restart in %s", run, after.Round(time.Millisecond), k, pause.Round(time.Millisecond))
		time.Sleep(pause)
	}

	final := filepath.Join(dir, "final.log")
	logs = append(logs, final)
	if exit, _ := runAndKill(t, args, final, 5*time.Minute); exit != 0 {
		t.Fatalf("the last run exited %d\n%s", exit, tailAll(logs))
	}
	if left := listFiles(t, in); len(left) != 0 {
		t.Errorf("the source still holds %q; want every file delivered and deleted", left)
	}
	target.check(t, dir, files)
	checkCrashStatus(t, dir, data, files)
	checkCrashAudit(t, dir, data, files)
	if t.Failed() {
		t.Logf("logs of the runs:\n%s", tailAll(logs))
	}
}

// runAndKill runs the runner with args, its output in logPath, and sends it
// SIGKILL after d unless it ended before. It returns the exit code, and
// whether it was killed.
func runAndKill(t *testing.T, args []string, logPath string, d time.Duration) (int, bool) {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(runnerBin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitCode(t, err), false
	case <-time.After(d):
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return -1, true
	}
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatal(err)
	return -1
}

// crashInput writes the harness's files under in: a big one of size bytes
// and small ones of awkward sizes and names. It returns name → sha256.
func crashInput(t *testing.T, in string, size int64, rng *rand.Rand, utf8Only bool) map[string]string {
	t.Helper()
	files := map[string]string{}
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	files["big.bin"] = writeSeededFile(t, filepath.Join(in, "big.bin"), size, rng.Uint64())
	names := []string{"empty.txt", "one byte", "dé jà/vu.csv", "deep/er/still/x.edi", "名前.txt", "a-b_c.d.e", "dot.in.mid.dle"}
	sizes := []int{0, 1, 33 << 10, 32 << 10, 1<<20 + 1, 3 << 20, 7}
	if !utf8Only {
		names = append(names, "\xff.txt", "\xfe.txt")
		sizes = append(sizes, 10, 11)
	}
	for i, n := range names {
		b := make([]byte, sizes[i])
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		writeFile(t, in, n, string(b))
		sum := sha256.Sum256(b)
		files[n] = hex.EncodeToString(sum[:])
	}
	return files
}

// smallInput writes n small files (0 to 12 KiB, a few at the group's
// bounds) under in, in a few folders, their names starting with prefix.
// It returns name → sha256.
func smallInput(t *testing.T, in, prefix string, n int, rng *rand.Rand, utf8Only bool) map[string]string {
	t.Helper()
	files := map[string]string{}
	for i := range n {
		name := fmt.Sprintf("%sbatch%d/%s%04d.edi", prefix, i%7, []string{"po-", "inv ", "ré-", "x"}[i%4], i)
		if !utf8Only && i%500 == 3 {
			name = fmt.Sprintf("%sodd-\xff%04d.edi", prefix, i)
		}
		size := rng.IntN(12 << 10)
		switch i % 250 {
		case 0:
			size = 0
		case 1:
			size = 32 << 10
		case 2:
			size = 32<<10 + 1
		}
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		writeFile(t, in, name, string(b))
		sum := sha256.Sum256(b)
		files[name] = hex.EncodeToString(sum[:])
	}
	return files
}

// checkCrashStatus checks runner status: every file done and passed, every
// delivery committed, and no other file.
func checkCrashStatus(t *testing.T, dir, data string, files map[string]string) {
	t.Helper()
	out, errOut, exit := runRunner(t, dir, "status", "--json", "--data", data)
	var st []engine.FlowStatus
	if exit != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st) != 1 {
		t.Fatalf("status: exit %d\n%s\n%s", exit, out, errOut)
	}
	var names []string
	for _, f := range st[0].Files {
		m := f.Manifest
		names = append(names, m.Name)
		if m.State != bus.FileDone || m.Outcome != "passed" || m.SHA256 != files[m.Name] {
			t.Errorf("status of %q: %s, %s, sha256 %s; want done, passed, %s (error %q)", m.Name, m.State, m.Outcome, m.SHA256, files[m.Name], m.Error)
		}
		for _, d := range f.Deliveries {
			if d.State != bus.DeliveryCommitted {
				t.Errorf("delivery of %q to %s: %s (%q); want committed", m.Name, d.Sink, d.State, d.Error)
			}
		}
	}
	slices.Sort(names)
	if want := sortedKeys(files); !slices.Equal(names, want) {
		t.Errorf("status lists %q; want %q", names, want)
	}
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkLocalCopies checks that dir holds exactly files, byte-identical:
// no temporary file, nothing else.
func checkLocalCopies(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	got := listFiles(t, dir)
	if want := sortedKeys(files); !slices.Equal(got, want) {
		t.Errorf("%s holds %q; want exactly %q", dir, got, want)
	}
	for _, n := range got {
		if sum, ok := files[n]; ok && fileSHA256(t, filepath.Join(dir, n)) != sum {
			t.Errorf("%s/%q: sha256 differs from the source's", dir, n)
		}
	}
}

// withChecksumFiles adds to files (name → sha256) the checksum file a sink
// with checksum: sha512 writes beside each, from the copies in dir (which
// the check compares with files too).
func withChecksumFiles(t *testing.T, dir string, files map[string]string) map[string]string {
	out := maps.Clone(files)
	for name := range files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			continue // reported by checkLocalCopies
		}
		sum := sha512.Sum512(data)
		side := sha256.Sum256([]byte(hex.EncodeToString(sum[:]) + "  " + path.Base(name) + "\n"))
		out[name+".sha512"] = hex.EncodeToString(side[:])
	}
	return out
}

func localTarget() crashTarget {
	return crashTarget{
		name: "local",
		sinks: func(t *testing.T, dir string) string {
			return `  - name: one
    local:
      path: ` + filepath.Join(dir, "out1") + `
  - name: two
    parallelism: 2
    checksum: sha512
    local:
      path: ` + filepath.Join(dir, "out2") + `
      part_size: 4MiB
`
		},
		check: func(t *testing.T, dir string, files map[string]string) {
			checkLocalCopies(t, filepath.Join(dir, "out1"), files)
			checkLocalCopies(t, filepath.Join(dir, "out2"), withChecksumFiles(t, filepath.Join(dir, "out2"), files))
		},
	}
}

func s3Target(t *testing.T) crashTarget {
	var srv *minio.Server
	return crashTarget{
		name:     "s3",
		utf8Only: true,
		sinks: func(t *testing.T, dir string) string {
			srv = minio.StartMinIO(t) // one per run: it stops when the run's test ends
			bucket := srv.Bucket
			return `  - name: bucket
    parallelism: 2
    s3:
      bucket: ` + bucket + `
      endpoint: ` + srv.Endpoint + `
      path_style: true
      region: ` + minio.Region + `
      access_key_id: ` + minio.AccessKey + `
      secret_access_key: ` + minio.SecretKey + `
      part_size: 5MiB
`
		},
		check: func(t *testing.T, dir string, files map[string]string) {
			ctx := context.Background()
			bucket := aws.String(srv.Bucket)
			list, err := srv.Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: bucket})
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, o := range list.Contents {
				keys = append(keys, aws.ToString(o.Key))
			}
			slices.Sort(keys)
			if want := sortedKeys(files); !slices.Equal(keys, want) {
				t.Errorf("the bucket holds %q; want exactly %q", keys, want)
			}
			for _, k := range keys {
				obj, err := srv.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String(k)})
				if err != nil {
					t.Fatal(err)
				}
				h := sha256.New()
				_, err = io.Copy(h, obj.Body)
				obj.Body.Close()
				if err != nil || hex.EncodeToString(h.Sum(nil)) != files[k] {
					t.Errorf("object %q: sha256 differs from the source's (%v)", k, err)
				}
			}
			ups, err := srv.Client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: bucket})
			if err != nil || len(ups.Uploads) != 0 {
				t.Errorf("multipart uploads left: %d (%v); want none", len(ups.Uploads), err)
			}
		},
	}
}

// ftpsTarget delivers through the ftps plugin to a vsftpd of its own per
// run, two sinks into two directories.
func ftpsTarget() crashTarget {
	var srv *ftpd.Server
	return crashTarget{
		name:     "ftps",
		plugin:   "ftps",
		utf8Only: true, // the plugin protocol carries names as UTF-8
		sinks: func(t *testing.T, dir string) string {
			srv = ftpd.Start(t, ftpd.Options{})
			conn := `
      host: 127.0.0.1
      port: ` + strconv.Itoa(srv.Port) + `
      user: ` + srv.User + `
      password: ` + srv.Password + `
      ca_file: ` + srv.CAFile + `
      disable_tls13: true
      part_size: 4MiB
      max_connections: 3`
			return `  - name: one
    retry: {attempts: 8, initial: 200ms, max: 2s}
    ftps:
      directory: ` + srv.Mkdir(t, "one") + conn + `
  - name: two
    retry: {attempts: 8, initial: 200ms, max: 2s}
    ftps:
      directory: ` + srv.Mkdir(t, "two") + conn + `
`
		},
		check: func(t *testing.T, dir string, files map[string]string) {
			checkLocalCopies(t, srv.Path("one"), files)
			checkLocalCopies(t, srv.Path("two"), files)
		},
	}
}

func thruTarget() crashTarget {
	var site *simSite
	return crashTarget{
		name:     "thru",
		utf8Only: true,
		sinks: func(t *testing.T, dir string) string {
			site = startThrusim(t, dir)
			return `  - name: thru
    parallelism: 2
    retry: {attempts: 5, initial: 200ms, max: 2s}
    thru:
      mode: content
      base_url: ` + site.url + `
      endpoint_path: "` + simEndpoint + `"
      api_key: ` + simAPIKey + `
      part_size: 4MiB
`
		},
		check: func(t *testing.T, dir string, files map[string]string) {
			got := map[string]int{}
			for _, d := range site.deliveries(t) {
				name := strings.TrimPrefix(strings.ReplaceAll(d.Path, `\`, "/")+"/"+d.Name, "/")
				got[name]++
				if files[name] != d.SHA256 {
					t.Errorf("the site's %q: sha256 %s, want %s", name, d.SHA256, files[name])
				}
			}
			for name := range files {
				if got[name] != 1 {
					t.Errorf("the site has %q %d times; want once", name, got[name])
				}
			}
			if len(got) != len(files) {
				t.Errorf("the site has %d files; want %d", len(got), len(files))
			}
		},
	}
}

// tailOf returns the last lines of the file at path.
func tailOf(path string) string {
	b, _ := os.ReadFile(path)
	return tail(string(b), 40)
}

func tailAll(paths []string) string {
	var b strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&b, "== %s\n%s\n", filepath.Base(p), tailOf(p))
	}
	return b.String()
}

// checkCrashAudit reads the audit trail after the kills: it verifies, no
// file lacks a step (each one was discovered, read, committed at every
// sink and acked passed), and no step is stored twice, though a killed
// runner's successor does again what it left unrecorded.
func checkCrashAudit(t *testing.T, dir, data string, files map[string]string) {
	t.Helper()
	out, errOut, exit := runRunner(t, dir, "audit", "verify", "--flow", "crash", "--data", data)
	if exit != 0 || !strings.Contains(out, "chain intact") {
		t.Errorf("audit verify: exit %d\n%s%s", exit, out, errOut)
	}
	out, errOut, exit = runRunner(t, dir, "audit", "export", "--flow", "crash", "--data", data)
	if exit != 0 {
		t.Fatalf("audit export: exit %d\n%s", exit, errOut)
	}
	steps := map[string]map[string]bool{}
	nsinks := map[string]bool{}
	seen := map[string]bool{}
	twice := 0
	for line := range strings.Lines(out) {
		var ev pipeline.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit export line %q: %v", line, err)
		}
		ev = ev.FromJSON() // names whole, as the export keeps them
		if id := audit.Identity(ev); seen[id] {
			if twice++; twice <= 5 {
				t.Errorf("stored twice: %+v", ev)
			}
		} else {
			seen[id] = true
		}
		if steps[ev.Name] == nil {
			steps[ev.Name] = map[string]bool{}
		}
		steps[ev.Name][string(ev.Kind)+ev.Outcome+ev.Sink] = true
		if ev.Sink != "" {
			nsinks[ev.Sink] = true
		}
	}
	bad := 0
	for name := range files {
		want := []string{"discovered", "read", "ackedpassed"}
		for s := range nsinks {
			want = append(want, "committed"+s)
		}
		for _, w := range want {
			if !steps[name][w] {
				if bad++; bad <= 5 {
					t.Errorf("%q: no %s in the audit trail", name, w)
				}
			}
		}
	}
	if bad > 5 {
		t.Errorf("... %d steps missing in all", bad)
	}
	if twice > 5 {
		t.Errorf("... %d events stored twice in all", twice)
	}
}
