package console_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/mftflow/mftflow/connectors/all"
	"github.com/mftflow/mftflow/console"
	"github.com/mftflow/mftflow/ops"
	"github.com/mftflow/mftflow/pipeline/audit"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/pipeline/flowfile"
	"github.com/mftflow/mftflow/testkit"
)

// The people and programs of the test sites.
const (
	operatorName, operatorPassword = "alice", "alice-password"
	viewerName, viewerPassword     = "bob", "bob-password"
)

// site is a runner as "runner run --http --console" composes it: an
// embedded NATS server, the engine running one flow between directories,
// its audit trail, and the operations endpoints with the console on a real
// HTTP server on 127.0.0.1.
type site struct {
	dir           string
	nc            *nats.Conn
	js            jetstream.JetStream
	run           *engine.Run
	console       *console.Console
	url           string // the server's base URL
	operatorToken string
	viewerToken   string
}

// flowYAML is the test flow: dir/in to the sinks archive (dir/archive) and
// partner (dir/partner, which refuses to overwrite), slowed to rate, the
// chunks kept for replay, with an audit trail.
func flowYAML(dir, rate string) string {
	return fmt.Sprintf(`name: demo
source:
  local: {path: %q, watch: true, stable_for: 0s, after: leave}
sinks:
  - name: archive
    local: {path: %q, part_size: 512KiB}
  - name: partner
    local: {path: %q, part_size: 512KiB, overwrite: fail}
    retry: {attempts: 1}
rate: %s
bus: {chunk_size: 256KiB, retention: 1h}
audit: {}
`, filepath.Join(dir, "in"), filepath.Join(dir, "archive"), filepath.Join(dir, "partner"), rate)
}

func accessForTests(t testing.TB) (*console.Access, string, string) {
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	opTok, opSum, err := console.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	viewTok, viewSum, _ := console.NewToken()
	return &console.Access{
		Users: []console.User{
			{Name: operatorName, Password: hash(operatorPassword), Role: console.RoleOperator},
			{Name: viewerName, Password: hash(viewerPassword), Role: console.RoleViewer},
		},
		Tokens: []console.Token{
			{Name: "deploy-bot", SHA256: opSum, Role: console.RoleOperator},
			{Name: "dashboard", SHA256: viewSum, Role: console.RoleViewer},
		},
	}, opTok, viewTok
}

// startSite writes files to dir/in and, to dir/partner, files in the way,
// then starts the flow and the console.
func startSite(t testing.TB, rate string, files, inTheWay map[string][]byte) *site {
	dir := t.TempDir()
	for sub, fs := range map[string]map[string][]byte{"in": files, "partner": inTheWay} {
		for name, b := range fs {
			p := filepath.Join(dir, sub, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := &site{dir: dir}
	s.nc = testkit.ConnectNATS(t, testkit.StartNATS(t))
	var err error
	if s.js, err = jetstream.New(s.nc); err != nil {
		t.Fatal(err)
	}
	reg, err := all.Registry()
	if err != nil {
		t.Fatal(err)
	}
	f, err := flowfile.Parse("demo.yaml", []byte(flowYAML(dir, rate)), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	trail, err := audit.Open(ctx, s.js, f.Name, audit.Options{Runner: "test-runner"})
	if err != nil {
		t.Fatal(err)
	}
	f.Events = append(f.Events, trail)
	eng, err := engine.New(s.nc, engine.Options{Registry: reg, RunID: "test-runner", AckWait: 5 * time.Second, Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if s.run, err = eng.Start(ctx, *f); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.run.Stop(context.Background())
		trail.Close(context.Background())
	})
	access, opTok, viewTok := accessForTests(t)
	s.operatorToken, s.viewerToken = opTok, viewTok
	s.console, err = console.New(console.Options{JS: s.js, Access: access, RunID: "test-runner",
		Stats: func() []engine.Stats { return []engine.Stats{s.run.Stats()} }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.console.Close() })
	h, err := ops.NewHandler(ops.Options{Conn: s.nc, Console: s.console})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fileSum returns the hex sha256 of a file, or "" if it cannot be read.
func fileSum(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// failedDelivery waits for the flow's failed delivery to sink and returns
// its file id.
func (s *site) failedDelivery(t testing.TB, sink string) (id, errText string) {
	t.Helper()
	waitFor(t, time.Minute, "a failed delivery to "+sink, func() bool {
		st, err := engine.ReadStatus(context.Background(), s.js, "demo")
		if err != nil || len(st) == 0 {
			return false
		}
		for _, f := range st[0].Files {
			for _, d := range f.Deliveries {
				if d.Sink == sink && d.State == "failed" {
					id, errText = f.Manifest.ID, d.Error
					return true
				}
			}
		}
		return false
	})
	return id, errText
}

// replayEvents returns the replay events of the flow's audit trail.
func (s *site) replayEvents(t testing.TB) []string {
	t.Helper()
	var out []string
	err := audit.Walk(context.Background(), s.js, "demo", time.Time{}, func(st audit.Stored) bool {
		for _, ev := range st.Events {
			if ev.Kind == "replay" {
				out = append(out, fmt.Sprintf("%s %s by %s", ev.FileID, ev.Sink, ev.By))
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func contains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
