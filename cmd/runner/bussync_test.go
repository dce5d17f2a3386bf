package main

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mftflow/mftflow/connectors/all"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/testkit"
)

func TestBusSyncFlagErrors(t *testing.T) {
	for _, arg := range []string{"sometimes", "0s", "-5s"} {
		_, stderr, exit := runInProcess("--bus-sync", arg, "status")
		want := `runner: invalid argument "` + arg + `" for "--bus-sync" flag: want auto, always or a duration such as 10s or 2m0s` + "\n"
		if exit != 1 || stderr != want {
			t.Errorf("--bus-sync %s: exit %d, stderr\n got %q\nwant %q", arg, exit, stderr, want)
		}
	}
}

// TestBusSyncResolves checks what each --bus-sync value starts the embedded
// server with, read back from the server's JetStream configuration: auto is
// always for a flow whose source hands each file out once, else the
// default interval.
func TestBusSyncResolves(t *testing.T) {
	reg, err := all.Registry()
	if err != nil {
		t.Fatal(err)
	}
	local := &pipeline.Flow{Name: "l", Source: pipeline.Component{Type: "local"}}
	s3 := &pipeline.Flow{Name: "s", Source: pipeline.Component{Type: "s3"}}
	thru := &pipeline.Flow{Name: "t", Source: pipeline.Component{Type: "thru"}}
	def := bus.Sync{Interval: bus.DefaultSyncInterval}
	always := bus.Sync{Always: true, Interval: bus.DefaultSyncInterval}
	for _, tc := range []struct {
		flag  string
		flows []*pipeline.Flow
		want  bus.Sync
	}{
		{"auto", []*pipeline.Flow{local, s3}, def},
		{"auto", []*pipeline.Flow{local, thru}, always},
		{"auto", nil, def},
		{"always", []*pipeline.Flow{local}, always},
		{"10s", []*pipeline.Flow{thru}, bus.Sync{Interval: 10 * time.Second}},
	} {
		var flows []string
		for _, f := range tc.flows {
			flows = append(flows, f.Source.Type)
		}
		t.Run(tc.flag+"/"+strings.Join(flows, ","), func(t *testing.T) {
			g := &globalOptions{data: t.TempDir(), logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			if err := g.busSync.Set(tc.flag); err != nil {
				t.Fatal(err)
			}
			c, err := connectForRun(g, embeddedOptions(g, reg, tc.flows)...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.embedded.Sync(); got != tc.want {
				t.Errorf("the embedded server syncs %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestAfterDeleteWaitsForTheSinkToBeDurable runs local → local with
// "after: delete" under strace and checks the order of the system calls
// the runner makes for each file: the sink's rename publishing it returns,
// then a sync of the sink's file system runs, and only after it returned
// the source file is unlinked.
func TestAfterDeleteWaitsForTheSinkToBeDurable(t *testing.T) {
	strace := testkit.Strace(t)
	dir := t.TempDir()
	writeFile(t, dir, "flow.yaml", localFlowHead("move", "./in", "after: delete")+`  - local:
      path: ./out
`)
	names := []string{"a.txt", "b.bin", "sub/c.txt"}
	for i, n := range names {
		writeFile(t, dir, "in/"+n, strings.Repeat("x", 1000*(i+1)))
	}
	trace := filepath.Join(dir, "trace")
	cmd := exec.Command(strace, "-f", "-y", "-qq", "-o", trace,
		"-e", "trace=syncfs,fsync,fdatasync,unlink,unlinkat,rename,renameat,renameat2",
		runnerBin, "run", "--progress", "none", "flow.yaml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(out), "ptrace") || strings.Contains(string(out), "PTRACE") {
			t.Skipf("strace cannot trace here: %s", out)
		}
		t.Fatalf("runner under strace: %v\n%s", err, out)
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	calls := testkit.ParseStrace(string(b))
	find := func(match func(testkit.SysCall) bool) (testkit.SysCall, bool) {
		for _, c := range calls {
			if match(c) {
				return c, true
			}
		}
		return testkit.SysCall{}, false
	}
	outDir, inDir := filepath.Join(dir, "out"), filepath.Join(dir, "in")
	for _, n := range names {
		target, source := filepath.Join(outDir, n), filepath.Join(inDir, n)
		if _, err := os.Stat(target); err != nil {
			t.Errorf("%s: not delivered: %v", n, err)
		}
		if _, err := os.Stat(source); err == nil {
			t.Errorf("%s: still at the source", n)
		}
		rename, ok1 := find(func(c testkit.SysCall) bool {
			return strings.HasPrefix(c.Name, "rename") && strings.Contains(c.Args, `"`+target+`"`) && c.OK()
		})
		unlink, ok2 := find(func(c testkit.SysCall) bool {
			return strings.HasPrefix(c.Name, "unlink") && strings.Contains(c.Args, `"`+source+`"`)
		})
		if !ok1 || !ok2 {
			t.Fatalf("%s: rename to the sink found %v, unlink at the source found %v; calls:\n%s", n, ok1, ok2, b)
		}
		if _, ok := find(func(c testkit.SysCall) bool {
			return c.Name == "syncfs" && strings.Contains(c.Args, "<"+outDir+">") && c.OK() &&
				c.Start > rename.End && c.End < unlink.Start
		}); !ok {
			t.Errorf("%s: no sync of the sink's file system began after the sink's rename (line %d) and returned before the source's unlink (line %d); calls:\n%s",
				n, rename.End, unlink.Start, b)
		}
	}
}
