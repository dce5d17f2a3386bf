package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline/engine"
)

// Files that fail before any delivery (a refused name, a failed read) are
// counted failed by the run, and status --failed lists each with its error.
func TestStatusFailedBeforeDelivery(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "flow.yaml", localFlowHead("early", "./in")+`  - local:
      path: ./out
`)
	writeFile(t, dir, `in/bad\name.txt`, "x")
	writeFile(t, dir, "in/ok.txt", "fine")
	unreadable := filepath.Join(dir, "in", "unreadable.bin")
	canFail := makeUnreadable(t, unreadable)

	failed := 1
	want := map[string]string{`bad\name.txt`: `file name "bad\\name.txt": contains a backslash: unsafe file name`}
	if canFail {
		failed = 2
		want["unreadable.bin"] = "reading bytes 0-4095: opening " + unreadable + ": open " + unreadable + ": permission denied"
	}
	stdout, stderr, exit := runRunner(t, dir, "run", "--progress", "none", "--log-level", "error", "flow.yaml")
	if exit != 3 {
		t.Fatalf("exit %d, want 3\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	if want := "early: 1 passed, " + strconv.Itoa(failed) + " failed, 0 skipped; "; !strings.HasPrefix(stdout, want) {
		t.Errorf("summary %q, want it to start with %q", stdout, want)
	}
	if want := "runner: " + plural(int64(failed), "file", "files") + ` failed or partly failed; see "runner status --failed"` + "\n"; !strings.HasSuffix(stderr, want) {
		t.Errorf("stderr does not end with %q:\n%s", want, stderr)
	}

	stdout, stderr, exit = runRunner(t, dir, "status")
	wantStatus := "flow early: " + strconv.Itoa(failed+1) + " files (1 done, " + strconv.Itoa(failed) + " failed before delivery)\n" +
		"  SINK   IN FLIGHT  COMMITTED  FAILED  SKIPPED\n" +
		"  local  0          1          0       0\n" +
		"  " + plural(int64(failed), "file", "files") + ` failed before delivery; list with "runner status --failed --flow early"` + "\n"
	if exit != 0 || stdout != wantStatus {
		t.Errorf("status: exit %d\n%s\nwant:\n%s\nstderr:\n%s", exit, stdout, wantStatus, stderr)
	}

	stdout, stderr, exit = runRunner(t, dir, "status", "--failed")
	wantFailed := "flow early\n" +
		"  SINK   IN FLIGHT  COMMITTED  FAILED  SKIPPED\n" +
		"  local  0          1          0       0\n" +
		"\n"
	if canFail {
		wantFailed += "  FILE            SINK  ATTEMPTS  ERROR\n" +
			`  bad\name.txt    -     -         ` + want[`bad\name.txt`] + "\n" +
			"  unreadable.bin  -     -         " + want["unreadable.bin"] + "\n"
	} else {
		wantFailed += "  FILE          SINK  ATTEMPTS  ERROR\n" +
			`  bad\name.txt  -     -         ` + want[`bad\name.txt`] + "\n"
	}
	if exit != 0 || stdout != wantFailed {
		t.Errorf("status --failed: exit %d\n%s\nwant:\n%s\nstderr:\n%s", exit, stdout, wantFailed, stderr)
	}

	stdout, stderr, exit = runRunner(t, dir, "status", "--failed", "--json")
	var flows []engine.FlowStatus
	if err := json.Unmarshal([]byte(stdout), &flows); exit != 0 || err != nil || len(flows) != 1 {
		t.Fatalf("status --failed --json: exit %d, %v\n%s\nstderr:\n%s", exit, err, stdout, stderr)
	}
	got := map[string]string{}
	for _, f := range flows[0].Files {
		got[f.Manifest.Name] = f.Error
		if len(f.Deliveries) != 0 {
			t.Errorf("%s: deliveries %+v, want none", f.Manifest.Name, f.Deliveries)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status --failed --json: errors (-want +got):\n%s", diff)
	}
}

// makeUnreadable makes path a 4096-byte file that the runner lists but
// cannot open, and reports whether it could. As root, where permissions do
// not stop reads, path links to a write-only sysfs attribute, which even
// root cannot open for reading.
func makeUnreadable(t *testing.T, path string) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.WriteFile(path, bytes.Repeat([]byte("u"), 4096), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(path, 0o644) })
		return true
	}
	candidates, _ := filepath.Glob("/sys/bus/*/rescan")
	more, _ := filepath.Glob("/sys/kernel/mm/hugepages/*/demote")
	for _, c := range append(candidates, more...) {
		info, err := os.Stat(c)
		if err != nil || !info.Mode().IsRegular() || info.Size() != 4096 {
			continue
		}
		if f, err := os.Open(c); err == nil {
			f.Close()
			continue
		} else if !errors.Is(err, fs.ErrPermission) {
			continue
		}
		if err := os.Symlink(c, path); err != nil {
			t.Fatal(err)
		}
		return true
	}
	t.Log("running as root without a write-only sysfs attribute to link to: skipping the unreadable file, checking the refused name only")
	return false
}

// A password in a URL appears in no log line, no status output and nowhere
// in the store: an S3 endpoint with user info is refused up front (the SDK
// would ignore it), and a Thru base URL's user info is hidden in the
// errors of the deliveries that fail.
func TestSecretsInURLsNotShownOrStored(t *testing.T) {
	closed := closedAddr(t)
	for _, tc := range []struct {
		name     string
		sink     string
		exit     int
		contains []string // in the run's output
	}{
		{"s3", `  - name: s3
    s3:
      bucket: nope
      endpoint: http://user:topsecret@` + closed + `
      path_style: true
      access_key_id: AKID
      secret_access_key: SECRETKEY
    retry: {attempts: 1}
`, 1, []string{"remove the user info (user:password@) from the URL: S3 does not use it; " +
			"put the credentials in access_key_id and secret_access_key (or set credentials: default)"}},
		{"thru", `  - name: thru
    thru:
      base_url: http://user:topsecret@` + closed + `
      mode: content
      endpoint_path: flow:TRN1/endpoint:END1/flowendpoint:6
      api_key: APIKEY
    retry: {attempts: 1}
  - name: token
    thru:
      base_url: http://topsecret@` + closed + `
      mode: content
      endpoint_path: flow:TRN1/endpoint:END1/flowendpoint:6
      api_key: APIKEY
    retry: {attempts: 1}
`, 3, []string{"http://user:xxxxx@" + closed + "/", "http://xxxxx@" + closed + "/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "flow.yaml", localFlowHead("secret", "./in")+tc.sink)
			writeFile(t, dir, "in/a.txt", "a")
			check := func(what, s string) {
				t.Helper()
				if strings.Contains(s, "topsecret") {
					t.Errorf("%s shows the password:\n%s", what, s)
				}
			}
			stdout, stderr, exit := runRunner(t, dir, "run", "--progress", "none", "--log-level", "debug", "flow.yaml")
			if exit != tc.exit {
				t.Errorf("run: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", exit, tc.exit, stdout, stderr)
			}
			check("the run's output", stdout+stderr)
			for _, want := range tc.contains {
				if !strings.Contains(stdout+stderr, want) {
					t.Errorf("the run's output does not say %q:\n%s%s", want, stdout, stderr)
				}
			}
			for _, args := range [][]string{{"status"}, {"status", "--failed"}, {"status", "--json"}, {"status", "--failed", "--json"}} {
				stdout, stderr, _ := runRunner(t, dir, args...)
				check(strings.Join(args, " "), stdout+stderr)
			}
			if tc.exit == 3 {
				stdout, _, _ := runRunner(t, dir, "status", "--failed")
				for _, want := range tc.contains {
					if !strings.Contains(stdout, want) {
						t.Errorf("status --failed does not show the failure at %q:\n%s", want, stdout)
					}
				}
			}
			files := 0
			err := filepath.WalkDir(filepath.Join(dir, ".mftflow"), func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				files++
				if bytes.Contains(b, []byte("topsecret")) {
					t.Errorf("%s holds the password", p)
				}
				return nil
			})
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			if tc.exit == 3 && files == 0 {
				t.Error("no store to search")
			}
		})
	}
}

// closedAddr returns a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// The log hides URL user info in messages, strings, errors and Stringers,
// whatever logged them (plugins log through it too).
func TestLogHidesURLUserInfo(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var b bytes.Buffer
		u, _ := url.Parse("https://u:secret3@h/p")
		newLogger(&b, format, "info").Info("calling http://u:secret1@h", "endpoint", "nats://secret2@h:4222",
			"err", errors.New(`Put "http://u:secret4@h/x": refused`), "url", u, "n", 3)
		for _, s := range []string{"secret1", "secret2", "secret3", "secret4"} {
			if strings.Contains(b.String(), s) {
				t.Errorf("%s log shows %s: %s", format, s, b.String())
			}
		}
		if !strings.Contains(b.String(), "u:xxxxx@h") || !strings.Contains(b.String(), "nats://xxxxx@h:4222") {
			t.Errorf("%s log lost the rest of the URLs: %s", format, b.String())
		}
	}
}
