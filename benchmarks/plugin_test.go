package benchmarks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkPluginSink moves each workload local → local twice: into the
// built-in local sink and into the same sink served by a plugin process
// (plugins/examples/localfs), so the ratio is the cost of the process
// boundary alone. Peak RSS is the runner's; the plugin process has its own.
// Every workload runs, the 10,000 small files included: one RPC round trip
// per file is exactly what they put to the test.
func BenchmarkPluginSink(b *testing.B) {
	dir := benchDir(b)
	bin, err := Runner()
	if err != nil {
		b.Fatal(err)
	}
	plugin, err := Build("github.com/mftflow/mftflow/plugins/examples/localfs")
	if err != nil {
		b.Fatal(err)
	}
	plugins := filepath.Join(filepath.Dir(plugin), "plugins.d")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		b.Fatal(err)
	}
	link := filepath.Join(plugins, "localfs")
	os.Remove(link)
	if err := os.Symlink(plugin, link); err != nil {
		b.Fatal(err)
	}
	eachWorkload(b, dir, func(b *testing.B, w Workload, in string) {
		for _, sink := range []string{"local", "localfs"} {
			// The plugin row is the measured one ("runner-…"), the
			// built-in sink its baseline.
			name := "built-in"
			if sink == "localfs" {
				name = "runner-plugin"
			}
			b.Run(name, func(b *testing.B) {
				measure(b, w, func(work string) []string {
					flow := fmt.Sprintf(localFlow, in, filepath.Join(work, "out"), "s2")
					flow = strings.Replace(flow, "    local:\n      path: "+filepath.Join(work, "out"), "    "+sink+":\n      path: "+filepath.Join(work, "out"), 1)
					return append(runnerCommand(b, bin, work, flow), "--plugins-dir", plugins)
				})
			})
		}
	})
}
