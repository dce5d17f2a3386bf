package host_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mftflow/mftflow/connectors/all"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/plugins/examples/eol/eol"
	"github.com/mftflow/mftflow/plugins/host"
	"github.com/mftflow/mftflow/testkit"
)

// load discovers dir's plugins and registers them next to the built-ins.
func load(t *testing.T, dir string, log *slog.Logger) (*pipeline.Registry, error) {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg, err := all.Registry()
	if err != nil {
		t.Fatal(err)
	}
	plugins, derr := host.Discover(context.Background(), dir, log)
	return reg, errors.Join(derr, host.Register(reg, plugins, log))
}

func TestDiscoverRegistersPluginConnectors(t *testing.T) {
	dir := pluginsDir(t, "localfs", "eol")
	reg, err := load(t, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		kind pipeline.Kind
		name string
	}{{pipeline.KindSource, "localfs"}, {pipeline.KindSink, "localfs"}, {pipeline.KindStage, "eol"}} {
		spec, ok := reg.Lookup(c.kind, c.name)
		if !ok {
			t.Fatalf("%s %q not registered; sinks: %v", c.kind, c.name, reg.Names(c.kind))
		}
		if want, _ := filepath.Abs(filepath.Join(dir, c.name)); spec.Origin != want {
			t.Errorf("%s %q: origin %q, want %q", c.kind, c.name, spec.Origin, want)
		}
		if _, ok := spec.Field(host.PinField); !ok {
			t.Errorf("%s %q has no %s field", c.kind, c.name, host.PinField)
		}
		if !strings.HasSuffix(spec.Summary, "(plugin version 1.0.0)") {
			t.Errorf("%s %q: summary %q lacks the plugin version", c.kind, c.name, spec.Summary)
		}
	}
	// The built-in local sink's fields came across intact.
	builtin, _ := reg.Lookup(pipeline.KindSink, "local")
	plugged, _ := reg.Lookup(pipeline.KindSink, "localfs")
	if diff := cmp.Diff(builtin.Fields, plugged.Fields[:len(plugged.Fields)-1], cmp.Transformer("default", parsedDefault)); diff != "" {
		t.Errorf("plugin sink fields differ from the built-in ones (-built-in +plugin):\n%s", diff)
	}
	// A config the plugin's spec rejects is rejected in the runner.
	_, err = reg.NewSink(context.Background(), "localfs", map[string]any{"path": t.TempDir(), "overwrite": "sometimes"})
	if want := `local: field "overwrite": want one of replace, skip, fail, got "sometimes"`; err == nil || !strings.Contains(err.Error(), `field "overwrite": want one of`) {
		t.Errorf("bad config: err = %v, want one like %s", err, want)
	}
}

func TestMissingPluginsDirHoldsNoPlugins(t *testing.T) {
	plugins, err := host.Discover(context.Background(), filepath.Join(t.TempDir(), "absent"), slog.New(slog.DiscardHandler))
	if err != nil || len(plugins) != 0 {
		t.Fatalf("Discover(absent dir) = %v, %v; want nothing, nil", plugins, err)
	}
}

func TestBadPlugins(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the plugin's path
		want  string                                // with PATH for the path
	}{
		{
			name: "not executable",
			setup: func(t *testing.T, dir string) string {
				return writeFile(t, dir, "notes", "#!/bin/sh\n", 0o644)
			},
			want: "plugin PATH: not executable (mode -rw-r--r--): make it executable (chmod +x) or move it out of the plugins directory",
		},
		{
			name: "not a plugin",
			setup: func(t *testing.T, dir string) string {
				return writeFile(t, dir, "hello", "#!/bin/sh\necho hello\n", 0o755)
			},
			want: `plugin PATH: not a mftflow plugin: the handshake failed (it printed "hello"); plugins must be built with plugins/sdk`,
		},
		{
			name:  "wrong protocol version",
			setup: link("fake-version2"),
			want:  "plugin PATH: speaks another version of the plugin protocol than this runner (1): rebuild it with this version's plugins/sdk (incompatible API version with plugin. Plugin version: 2, Client versions: [1])",
		},
		{
			name:  "crash at start",
			setup: link("fake-crash"),
			want:  "plugin PATH: exited at start; its last output:\nfake: cannot read /etc/fake.conf: no such file or directory",
		},
		{
			name:  "invalid spec",
			setup: link("fake-badspec"),
			want:  `plugin PATH: invalid spec: connector "bad": field name "Size": use lowercase letters, digits and underscores`,
		},
		{
			name:  "name clash with a built-in",
			setup: link("fake-clash"),
			want:  `plugin PATH: sink "local" clashes with the built-in sink "local": rename the connector in the plugin`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tc.setup(t, dir)
			_, err := load(t, dir, nil)
			want := strings.ReplaceAll(tc.want, "PATH", path)
			if err == nil || err.Error() != want {
				t.Fatalf("error:\n%v\nwant:\n%s", err, want)
			}
		})
	}
}

func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// link puts a symlink to the built binary called name into dir.
func link(name string) func(t *testing.T, dir string) string {
	return func(t *testing.T, dir string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(filepath.Join(binDir, name), p); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

func TestOneBadPluginDoesNotHideTheOthers(t *testing.T) {
	dir := pluginsDir(t, "eol", "fake-crash")
	reg, err := load(t, dir, nil)
	if err == nil || !strings.Contains(err.Error(), "fake-crash: exited at start") {
		t.Fatalf("err = %v, want the crash reported", err)
	}
	if _, ok := reg.Lookup(pipeline.KindStage, "eol"); !ok {
		t.Fatal("the good plugin was not registered")
	}
}

func TestPin(t *testing.T) {
	dir := pluginsDir(t, "localfs")
	reg, err := load(t, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(filepath.Join(binDir, "localfs"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	path, _ := filepath.Abs(filepath.Join(dir, "localfs"))
	for _, tc := range []struct{ pin, want string }{
		{"sha256:" + hex.EncodeToString(sum[:]), ""},
		{"sha256:" + strings.Repeat("0", 64), "plugin " + path + ": the binary's sha256 does not match plugin_sha256 in the flow: rebuild or reinstall the plugin, or update the pin"},
		{"md5:1234", `localfs: field "plugin_sha256": want "sha256:" and 64 hex digits, as sha256sum prints them`},
	} {
		sk, err := reg.NewSink(context.Background(), "localfs", map[string]any{"path": t.TempDir(), host.PinField: tc.pin})
		if sk != nil {
			sk.Close()
		}
		if got := errString(err); got != tc.want {
			t.Errorf("pin %q: error %q, want %q", tc.pin, got, tc.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Parts reach a plugin sink through shared memory on Linux, else as gRPC
// frames; the suite runs both ways.
func TestSinkConformanceOverRPC(t *testing.T) {
	t.Run("shared memory", func(t *testing.T) { sinkConformance(t) })
	t.Run("frames", func(t *testing.T) {
		*host.UseShm = false
		defer func() { *host.UseShm = true }()
		sinkConformance(t)
	})
}

func sinkConformance(t *testing.T) {
	reg, err := load(t, pluginsDir(t, "localfs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var dir string
	testkit.RunSinkTests(t, testkit.SinkHarness{
		New: func(t *testing.T) pipeline.Sink {
			dir = t.TempDir()
			sk, err := reg.NewSink(context.Background(), "localfs", map[string]any{"path": dir, "name": "{name}", "part_size": "64KiB"})
			if err != nil {
				t.Fatal(err)
			}
			return sk
		},
		Read: func(t *testing.T, name string) ([]byte, bool) {
			b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
			return b, err == nil
		},
		List: func(t *testing.T) []string { return testkit.ListFiles(dir) },
	})
}

func TestSourceConformanceOverRPC(t *testing.T) {
	reg, err := load(t, pluginsDir(t, "localfs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var dir string
	newSource := func(t *testing.T) pipeline.Source {
		src, err := reg.NewSource(context.Background(), "localfs", map[string]any{
			"path": dir, "watch": false, "stable_for": "0s", "after": "leave", "ignore": []string{},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		return src
	}
	testkit.RunSourceTests(t, testkit.SourceHarness{
		New: func(t *testing.T, files map[string][]byte) pipeline.Source {
			dir = t.TempDir()
			for name, b := range files {
				p := filepath.Join(dir, filepath.FromSlash(name))
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			return newSource(t)
		},
		Finite:      true,
		AfterPassed: testkit.KeepsFile,
		Exists: func(t *testing.T, name string) bool {
			_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(name)))
			return err == nil
		},
		Reopen: newSource,
	})
}

func TestErrorsKeepTheirIdentity(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg, err := load(t, pluginsDir(t, "fake-faulty"), log)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f := pipeline.File{ID: "f1", Key: "k", Name: "a.txt", Size: 3}
	open := func(fail string) (pipeline.Upload, error) {
		sk, err := reg.NewSink(ctx, "faulty", map[string]any{"fail": fail})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sk.Close() })
		return sk.Open(ctx, f, nil)
	}

	_, err = open("open")
	if err == nil || err.Error() != `bucket "nowhere" does not exist` || !pipeline.IsPermanent(err) {
		t.Errorf("open: err = %v (permanent %v), want the permanent error as written", err, pipeline.IsPermanent(err))
	}
	_, err = open("skip")
	if !errors.Is(err, pipeline.ErrSkip) || err.Error() != "a.txt exists with the same content: file skipped" {
		t.Errorf("skip: err = %v, want ErrSkip with its message", err)
	}
	u, err := open("write")
	if err != nil {
		t.Fatal(err)
	}
	err = u.WritePart(ctx, pipeline.Part{Size: 3, Last: true}, strings.NewReader("abc"))
	if err == nil || err.Error() != "connection reset by peer" || pipeline.IsPermanent(err) {
		t.Errorf("write: err = %v, want the retryable error as written", err)
	}
	if got := string(u.State()); got != "state" {
		t.Errorf("State() = %q, want %q", got, "state")
	}
	u, err = open("exists")
	if err != nil {
		t.Fatal(err)
	}
	if err := u.WritePart(ctx, pipeline.Part{Size: 3, Last: true}, strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	err = u.Commit(ctx, f)
	if !errors.Is(err, pipeline.ErrExists) || !pipeline.IsPermanent(err) {
		t.Errorf("commit: err = %v, want ErrExists, permanent", err)
	}

	st, err := reg.NewStage(ctx, "dropper", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = st.Process(ctx, f, strings.NewReader("abc"))
	if !errors.Is(err, pipeline.ErrSkip) || err.Error() != "a.txt is not wanted: file skipped" {
		t.Errorf("stage: err = %v, want ErrSkip with its message", err)
	}
	st.(io.Closer).Close()

	// The plugin's slog record reached the runner's log with its level.
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "level=WARN msg=skipping") || !strings.Contains(logs.String(), "file=a.txt") {
		t.Errorf("the plugin's warning is not in the runner's log:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestStagePlugin(t *testing.T) {
	reg, err := load(t, pluginsDir(t, "eol"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := reg.NewStage(context.Background(), "eol", map[string]any{"to": "crlf"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.(io.Closer).Close()
	// Several frames' worth, with line ends everywhere.
	var in bytes.Buffer
	for in.Len() < 5<<20 {
		in.WriteString("line one\nline two\r\nthird\r")
	}
	f, out, err := st.Process(context.Background(), pipeline.File{Name: "a.txt", Size: int64(in.Len())}, bytes.NewReader(in.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out)
	out.(io.Closer).Close()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := io.ReadAll(eol.NewReader(bytes.NewReader(in.Bytes()), true))
	if !bytes.Equal(got, want) {
		t.Fatalf("output: %d bytes, want %d bytes", len(got), len(want))
	}
	if f.Size != -1 || f.Name != "a.txt" {
		t.Errorf("file = %+v, want the name kept and the size unknown", f)
	}
}

// parsedDefault compares defaults by value: "8MiB" and 8388608 are the same.
func parsedDefault(f pipeline.Field) pipeline.Field {
	if f.Default != nil {
		f.Default, _ = f.Parse(f.Default)
	}
	return f
}

// A host item claims no ability the plugin's item lacks: localfs items read
// ranges over RPC exactly when the built-in local source's do, and open
// siblings exactly when they do.
func TestItemAbilitiesOverRPC(t *testing.T) {
	reg, err := load(t, pluginsDir(t, "localfs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{"path": dir, "watch": false, "stable_for": "0s", "after": "leave"}
	sameAbilities(t, firstItem(t, reg, "localfs", cfg), firstItem(t, reg, "local", cfg))
}

// firstItem returns the first item the source name of reg offers with cfg.
func firstItem(t *testing.T, reg *pipeline.Registry, name string, cfg map[string]any) pipeline.Item {
	t.Helper()
	src, err := reg.NewSource(t.Context(), name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	it, err := src.Next(t.Context())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return it
}

// sameAbilities fails t unless an item a plugin offered has the optional
// abilities the same connector's item has in process, no more and no fewer:
// the engine and stages find them by type assertion.
func sameAbilities(t *testing.T, plugged, inProcess pipeline.Item) {
	t.Helper()
	for _, a := range []struct {
		name string
		has  func(pipeline.Item) bool
	}{
		{"pipeline.RangeOpener", func(it pipeline.Item) bool { _, ok := it.(pipeline.RangeOpener); return ok }},
		{"pipeline.SiblingOpener", func(it pipeline.Item) bool { _, ok := it.(pipeline.SiblingOpener); return ok }},
	} {
		if got, want := a.has(plugged), a.has(inProcess); got != want {
			t.Errorf("the plugin's item is a %s: %v; in process: %v", a.name, got, want)
		}
	}
}
