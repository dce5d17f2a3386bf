package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pluginsDirWith returns a plugins directory in dir holding the localfs plugin.
func pluginsDirWith(t *testing.T, dir string) string {
	t.Helper()
	plugins := filepath.Join(dir, "plugins.d")
	os.MkdirAll(plugins, 0o755)
	if err := os.Symlink(localfsPlugin(t), filepath.Join(plugins, "localfs")); err != nil {
		t.Fatal(err)
	}
	return plugins
}

func TestConnectorsListsPlugins(t *testing.T) {
	dir := t.TempDir()
	plugins := pluginsDirWith(t, dir)
	stdout, stderr, code := runRunner(t, dir, "connectors", "--plugins-dir", plugins)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	path, _ := filepath.Abs(filepath.Join(plugins, "localfs"))
	for _, want := range []string{
		"localfs (" + path + "): Reads files from a local directory",
		"localfs (" + path + "): Writes files to a local directory",
		"plugin_sha256",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("connectors output lacks %q:\n%s", want, stdout)
		}
	}
}

// Without --plugins-dir the runner finds plugins in plugins.d beside its
// executable (where `make plugins` builds the shipped ones) and in the
// working directory, each directory once.
func TestPluginsFoundWithoutFlags(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	if err := os.Symlink(runnerBin, filepath.Join(bin, "runner")); err != nil {
		t.Fatal(err)
	}
	besideBinary := pluginsDirWith(t, bin)
	run := func(wd string) string {
		cmd := exec.Command(filepath.Join(bin, "runner"), "connectors")
		cmd.Dir = wd
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("runner connectors in %s: %v\n%s", wd, err, out)
		}
		return string(out)
	}
	// The symlink to the binary is followed: plugins.d beside the real one.
	if out := run(dir); strings.Contains(out, "localfs (") {
		t.Fatalf("found a plugin beside a symlink, not the executable:\n%s", out)
	}
	os.Remove(filepath.Join(bin, "runner"))
	copyFile(t, runnerBin, filepath.Join(bin, "runner"))
	path, _ := filepath.Abs(filepath.Join(besideBinary, "localfs"))
	if out := run(dir); !strings.Contains(out, "localfs ("+path+"): Reads files") {
		t.Fatalf("plugin beside the executable not listed:\n%s", out)
	}
	// Run from bin/, both defaults are one directory: listed once, no clash.
	if out := run(bin); strings.Count(out, "localfs ("+path+"): Reads files") != 1 {
		t.Fatalf("plugin not listed exactly once:\n%s", out)
	}
	wd := t.TempDir()
	inWorkDir := pluginsDirWith(t, wd)
	os.RemoveAll(besideBinary)
	path, _ = filepath.Abs(filepath.Join(inWorkDir, "localfs"))
	if out := run(wd); !strings.Contains(out, "localfs ("+path+"): Reads files") {
		t.Fatalf("plugin in ./plugins.d not listed:\n%s", out)
	}
}

func TestValidateChecksPluginConfig(t *testing.T) {
	dir := t.TempDir()
	plugins := pluginsDirWith(t, dir)
	flow := writeFile(t, dir, "flow.yaml", `name: p
source:
  local:
    path: in
sinks:
  - localfs:
      path: out
      overwrite: sometimes
      colour: blue
`)
	_, stderr, code := runRunner(t, dir, "validate", "--plugins-dir", plugins, flow)
	want := flow + `:9:7: localfs sink: unknown field "colour"`
	if code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, flow+`:8:18: localfs sink: field "overwrite": want one of`) {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and errors at the fields' positions", code, stderr)
	}
}

func TestBadPluginStopsTheRunner(t *testing.T) {
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins.d")
	writeFile(t, plugins, "readme.txt", "not a plugin")
	flow := writeFile(t, dir, "flow.yaml", "name: p\nsource:\n  local:\n    path: in\nsinks:\n  - local:\n      path: out\n")
	_, stderr, code := runRunner(t, dir, "run", "--plugins-dir", plugins, flow)
	path, _ := filepath.Abs(filepath.Join(plugins, "readme.txt"))
	want := "runner: loading plugins from " + plugins + " (--plugins-dir):\nplugin " + path + ": not executable (mode -rw-r--r--): make it executable (chmod +x) or move it out of the plugins directory\n"
	if code != 1 || stderr != want {
		t.Fatalf("exit %d, stderr:\n%q\nwant exit 1 and:\n%q", code, stderr, want)
	}
}

// A flow with a plugin stage and a plugin sink: local → eol (to CRLF) →
// localfs.
func TestFlowThroughPluginStageAndSink(t *testing.T) {
	dir := t.TempDir()
	plugins := pluginsDirWith(t, dir)
	if err := os.Symlink(examplePlugin(t, "eol"), filepath.Join(plugins, "eol")); err != nil {
		t.Fatal(err)
	}
	in := strings.Repeat("a,b,c\n1,2,3\r\n", 200000) // 2.6 MB: many frames
	writeFile(t, dir, "in/data.csv", in)
	flow := writeFile(t, dir, "flow.yaml", `name: eol
source:
  local:
    path: in
    watch: false
    stable_for: 0s
stages:
  - eol: {to: crlf}
sinks:
  - localfs:
      path: out
`)
	_, stderr, code := runRunner(t, dir, "run", "--plugins-dir", plugins, "--progress", "none", flow)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out", "data.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("a,b,c\r\n1,2,3\r\n", 200000); string(got) != want {
		t.Fatalf("output: %d bytes, want %d bytes of CRLF lines", len(got), len(want))
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err == nil {
		err = os.WriteFile(to, b, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// A flow naming a shipped plugin that is not there says how to get it.
func TestMissingShippedPluginSaysHowToGetIt(t *testing.T) {
	dir := t.TempDir()
	flow := writeFile(t, dir, "flow.yaml", "name: p\nsource:\n  sftp: {host: h, user: u, directory: in}\nsinks:\n  - local: {path: out}\n")
	_, stderr, exit := runRunner(t, dir, "validate", flow)
	want := `sftp and ftps ship as plugins: build them with "make plugins"`
	if exit != 1 || !strings.Contains(stderr, `unknown source connector "sftp"`) || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, stderr:\n%s\nwant the unknown connector and %q", exit, stderr, want)
	}
}
