package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// runner run --http --console serves the console beside /metrics, with
// logins from the access file and CSRF tokens on actions.
func TestRunServesTheConsole(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "flow.yaml", watchedCopyFlow)
	writeFile(t, dir, "in/a.txt", "a\n")
	hash, err := bcrypt.GenerateFromPassword([]byte("carol-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "access.yaml", "users:\n  - {name: carol, password: '"+string(hash)+"', role: operator}\n")

	_, _, stderr := startIn(t, dir, "run", "--progress", "none", "--http", "127.0.0.1:0", "--console", "--console-access", "access.yaml", "flow.yaml")
	listening := regexp.MustCompile(`msg="operations endpoints listening" url=(http://127\.0\.0\.1:\d+) paths="[^"]*/console/"`)
	var base string
	waitFor(t, func() bool {
		if m := listening.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
		}
		return base != ""
	})

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (int, string, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Location")
	}
	if code, _, loc := get("/"); code != http.StatusFound || loc != "/console/" {
		t.Errorf("GET /: %d to %q, want 302 to /console/", code, loc)
	}
	if code, _, loc := get("/console/"); code != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/login") {
		t.Errorf("GET /console/ without login: %d to %q, want 303 to the login page", code, loc)
	}
	resp, err := c.PostForm(base+"/console/login", url.Values{"name": {"carol"}, "password": {"carol-password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	waitFor(t, func() bool {
		code, body, _ := get("/console/flows/copy")
		return code == http.StatusOK && strings.Contains(body, "(this process)")
	})
	resp, err = c.PostForm(base+"/console/flows/copy/replay", url.Values{"file": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a replay without the CSRF token: %d, want 403", resp.StatusCode)
	}
	if code, _, _ := get("/metrics"); code != http.StatusOK {
		t.Errorf("/metrics beside the console: %d", code)
	}
	if strings.Contains(stderr.String(), "carol-password") {
		t.Error("the password is in the log")
	}
}

func TestConsoleFlagErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "flow.yaml", copyFlow)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--console", "--console-insecure-no-auth", "flow.yaml"}, "--console needs --http ADDR"},
		{[]string{"run", "--http", "127.0.0.1:0", "--console", "flow.yaml"}, "the console needs --console-access FILE"},
		{[]string{"run", "--http", "0.0.0.0:0", "--console", "--console-insecure-no-auth", "flow.yaml"}, "--console-insecure-no-auth: --http 0.0.0.0:0 is not a loopback address"},
		{[]string{"run", "--http", "127.0.0.1:0", "--console-access", "a.yaml", "flow.yaml"}, "need --console"},
		{[]string{"run", "--http", "127.0.0.1:0", "--http-tls-cert", "c.pem", "flow.yaml"}, "--http-tls-cert and --http-tls-key go together"},
		{[]string{"run", "--http", "127.0.0.1:0", "--console", "--console-access", "missing.yaml", "flow.yaml"}, "--console-access: console access file: open missing.yaml"},
		{[]string{"console", "--http", "127.0.0.1:0"}, "the console needs --console-access FILE"},
		{[]string{"console", "new-token"}, "new-token needs --name"},
	} {
		_, stderr, exit := runRunner(t, dir, c.args...)
		if exit != exitErr || !strings.Contains(stderr, c.want) {
			t.Errorf("runner %s: exit %d\n%s\nwant exit 1 and %q", strings.Join(c.args, " "), exit, stderr, c.want)
		}
	}
}

func TestConsoleHashPasswordAndNewToken(t *testing.T) {
	cmd := exec.Command(runnerBin, "console", "hash-password")
	cmd.Stdin = strings.NewReader("correct horse battery\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hash-password: %v", err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(string(out))), []byte("correct horse battery")); err != nil {
		t.Errorf("hash-password printed %q, not a bcrypt hash of the password: %v", out, err)
	}
	stdout, stderr, exit := runRunner(t, t.TempDir(), "console", "new-token", "--name", "ci", "--role", "operator")
	if exit != 0 || !regexp.MustCompile(`(?s)^token \(shown once.*\n  [0-9a-f]{64}\naccess file, under tokens:\n  - \{name: ci, sha256: [0-9a-f]{64}, role: operator\}\n$`).MatchString(stdout) {
		t.Errorf("new-token: exit %d\n%s%s", exit, stdout, stderr)
	}
}

// runner console attaches to the runner using the data directory and shows
// its flows; without a runner it refuses to take the directory.
func TestConsoleAttachesToARunner(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "flow.yaml", watchedCopyFlow)
	writeFile(t, dir, "in/a.txt", "a\n")
	if _, stderr, exit := runRunner(t, dir, "console", "--http", "127.0.0.1:0", "--console-insecure-no-auth"); exit != exitErr || !strings.Contains(stderr, "no runner state in ./.mftflow") {
		t.Errorf("runner console without a runner: exit %d\n%s", exit, stderr)
	}

	run := exec.Command(runnerBin, "run", "--progress", "none", "flow.yaml")
	run.Dir = dir
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer run.Process.Kill()
	waitFor(t, func() bool { _, _, exit := runRunner(t, dir, "status"); return exit == 0 })

	con := exec.Command(runnerBin, "console", "--http", "127.0.0.1:0", "--console-insecure-no-auth")
	con.Dir = dir
	var stderr opsLog
	con.Stderr = &stderr
	if err := con.Start(); err != nil {
		t.Fatal(err)
	}
	defer con.Process.Kill()
	listening := regexp.MustCompile(`msg="console listening" url=(http://127\.0\.0\.1:\d+)/console/ nats="the runner`)
	var base string
	waitFor(t, func() bool {
		if m := listening.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
		}
		return base != ""
	})
	waitFor(t, func() bool {
		code, body, err := httpGet(base + "/console/flows/copy")
		return err == nil && code == http.StatusOK && strings.Contains(body, "Flow copy") && strings.Contains(body, `data-live="done">1<`)
	})
}
