package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestValidateCatchesRunFailures covers flows that "run" refuses or
// mishandles and that validate used to pass: each case gives the exact
// messages, with the file's positions.
func TestValidateCatchesRunFailures(t *testing.T) {
	tests := []struct {
		name string
		flow string
		args []string // before "validate"
		want []string // "$DIR" stands for the test's directory
	}{
		{
			name: "regex that does not compile",
			flow: `name: x
source: {local: {path: ./in}}
stages:
  - match: {regex: "(a"}
sinks: [{local: {path: ./out}}]
`,
			want: []string{"flow.yaml:4:20: match stage: field \"regex\": \"(a\" does not compile: missing closing ): `(a`; correct it (Go RE2 syntax, see https://pkg.go.dev/regexp/syntax)"},
		},
		{
			name: "glob that does not compile",
			flow: `name: x
source: {local: {path: ./in, exclude: ["{a"]}}
sinks: [{local: {path: ./out}}]
`,
			want: []string{`flow.yaml:2:39: local source: field "exclude": invalid glob pattern "{a": close every "[" and "{", or escape them with "\"`},
		},
		{
			name: "unknown placeholders",
			flow: `name: x
source: {local: {path: ./in}}
stages:
  - rename: {name: "{date}/{nmae}"}
sinks:
  - local: {path: ./out, name: "{stem}{extension}"}
  - s3: {bucket: b, access_key_id: k, secret_access_key: s, key: "{attr}"}
`,
			want: []string{
				`flow.yaml:4:20: rename stage: field "name": name template "{date}/{nmae}": unknown placeholder {nmae} (known: {name} {base} {dir} {stem} {ext} {date} {time} {id} {attr.KEY})`,
				`flow.yaml:6:32: local sink: field "name": name template "{stem}{extension}": unknown placeholder {extension} (known: {name} {base} {dir} {stem} {ext} {date} {time} {id} {attr.KEY})`,
				`flow.yaml:7:66: s3 sink: field "key": name template "{attr}": unknown placeholder {attr} (known: {name} {base} {dir} {stem} {ext} {date} {time} {id} {attr.KEY})`,
			},
		},
		{
			name: "template that makes every name unsafe",
			flow: `name: x
source: {local: {path: ./in}}
sinks: [{local: {path: ./out, name: "../{name}"}}]
`,
			want: []string{`flow.yaml:3:37: local sink: field "name": name template "../{name}" makes unsafe names (contains ".." and would escape the target directory): every file would be refused`},
		},
		{
			name: "compression level out of range",
			flow: `name: x
source: {local: {path: ./in}}
stages:
  - compress: {format: zstd, level: 99}
sinks: [{local: {path: ./out}}]
`,
			want: []string{`flow.yaml:4:37: compress stage: field "level": zstd has levels 1 (fastest) to 22 (smallest), got 99: pick one of them, or 0 for the default`},
		},
		{
			name: "missing source directory",
			flow: `name: x
source:
  local:
    path: ${MFTFLOW_VALIDATE_UNSET:./inbox}
sinks: [{local: {path: ./out}}]
`,
			want: []string{`flow.yaml:4:11: local source: field "path": directory $DIR/inbox does not exist: create it, or correct the path (MFTFLOW_VALIDATE_UNSET is not set, so ${MFTFLOW_VALIDATE_UNSET:./inbox} gave "./inbox")`},
		},
		{
			name: "source path that is a file",
			flow: `name: x
source: {local: {path: ./in/a.txt}}
sinks: [{local: {path: ./out}}]
`,
			want: []string{`flow.yaml:2:24: local source: field "path": $DIR/in/a.txt is not a directory: give the directory that holds the files`},
		},
		{
			name: "path left empty by an unset variable",
			flow: `name: x
source: {local: {path: ./in}}
sinks:
  - local:
      path: ${MFTFLOW_VALIDATE_UNSET:}
`,
			want: []string{`flow.yaml:5:13: local sink: required field "path" is empty: MFTFLOW_VALIDATE_UNSET is not set, so ${MFTFLOW_VALIDATE_UNSET:} gave ""; set the variable, or give a default that is not empty ("${VAR:value}")`},
		},
		{
			name: "required field written empty",
			flow: `name: x
source: {local: {path: ""}}
sinks: [{local: {path: ./out}}]
`,
			want: []string{`flow.yaml:2:24: local source: required field "path" is empty`},
		},
		{
			name: "chunk size above the embedded server's max_payload",
			flow: `name: x
source: {local: {path: ./in}}
sinks: [{local: {path: ./out}}]
bus: {chunk_size: 8MiB}
`,
			want: []string{`flow.yaml:4:19: bus.chunk_size: 8MiB is above the limit of 8191KiB (the embedded NATS server's max_payload of 8MiB, less 1KiB for headers); lower it, or run against a NATS server with a larger max_payload (--nats-url)`},
		},
		{
			name: "chunk size with an external server",
			flow: `name: x
source: {local: {path: ./in}}
sinks: [{local: {path: ./out}}]
bus: {chunk_size: 8MiB}
`,
			args: []string{"--nats-url", "nats://127.0.0.1:1"},
		},
		{
			name: "chunk size above any server's",
			flow: `name: x
source: {local: {path: ./in}}
sinks: [{local: {path: ./out}}]
bus: {chunk_size: 128MiB}
`,
			args: []string{"--nats-url", "nats://127.0.0.1:1"},
			want: []string{`flow.yaml:4:19: bus.chunk_size: 128MiB is above the limit of 64MiB per bus message; lower it`},
		},
		{
			name: "counts above their limits",
			flow: `name: x
source: {local: {path: ./in}}
sinks:
  - local: {path: ./out}
    files: 1000000000
    parallelism: 65
    retry: {attempts: 1001, initial: 25h, max: 25h}
bus: {files: 257, readers: 65, window: 2TiB}
`,
			want: []string{
				`flow.yaml:5:12: sinks[0].files: 1000000000 is above the limit of 256 files delivered at once per sink; lower it`,
				`flow.yaml:6:18: sinks[0].parallelism: 65 is above the limit of 64 parts of one file written at once; lower it`,
				`flow.yaml:7:23: sinks[0].retry.attempts: 1001 is above the limit of 1000 attempts per delivery; lower it`,
				`flow.yaml:7:38: sinks[0].retry.initial: 25h0m0s is above the limit of 24h0m0s; lower it`,
				`flow.yaml:7:48: sinks[0].retry.max: 25h0m0s is above the limit of 24h0m0s; lower it`,
				`flow.yaml:8:14: bus.files: 257 is above the limit of 256 files read from the source at once; lower it`,
				`flow.yaml:8:28: bus.readers: 65 is above the limit of 64 range reads of one file at once; lower it`,
				`flow.yaml:8:40: bus.window: 2TiB is above the limit of 1TiB of reading ahead of the slowest sink; lower it`,
			},
		},
		{
			name: "connector counts and sizes above their limits",
			flow: `name: x
source: {local: {path: ./in}}
sinks:
  - local: {path: ./out, part_size: 2GiB}
  - s3: {bucket: b, access_key_id: k, secret_access_key: s, part_size: 6GiB, concurrency: 1000}
`,
			want: []string{
				`flow.yaml:4:37: local sink: field "part_size": 2GiB is above the limit of 1GiB per part (each part being written is held in memory); lower it`,
				`flow.yaml:5:72: s3 sink: field "part_size": 6GiB is above S3's limit of 5GiB per part; lower it`,
				`flow.yaml:5:91: s3 sink: field "concurrency": 1000: want 0 (the sink's parallelism) to 64 parts of one file at once`,
			},
		},
		{
			name: "two local sinks in one directory",
			flow: `name: x
source: {local: {path: ./in}}
sinks:
  - name: a
    local: {path: ./out}
  - name: b
    local: {path: out/}
`,
			want: []string{`flow.yaml:6:5: sink "b" writes into local directory $DIR/out, as sink "a" does (flow.yaml:4:5): the two would overwrite each other's files and deliveries would fail with parts missing; give each sink its own place`},
		},
		{
			name: "a local sink inside another",
			flow: `name: x
source: {local: {path: ./in}}
sinks:
  - name: a
    local: {path: ./out/b}
  - name: b
    local: {path: ./out}
`,
			want: []string{`flow.yaml:6:5: sink "b" writes into local directory $DIR/out, which holds local directory $DIR/out/b of sink "a" (flow.yaml:4:5): the two would overwrite each other's files and deliveries would fail with parts missing; give each sink its own place, not one inside the other`},
		},
		{
			name: "local sinks apart by their name templates",
			flow: `name: x
source: {local: {path: ./in}}
sinks:
  - name: a
    local: {path: ./out, name: "a/{name}"}
  - name: b
    local: {path: ./out, name: "b/{name}"}
`,
		},
		{
			name: "two S3 sinks with the same bucket and key",
			flow: `name: x
source: {local: {path: ./in}}
sinks:
  - s3: {bucket: b, endpoint: "http://127.0.0.1:9000", access_key_id: k, secret_access_key: s, key: "in/{name}"}
  - s3: {bucket: b, endpoint: "http://127.0.0.1:9000/", access_key_id: k, secret_access_key: s, prefix: in}
  - s3: {bucket: b, access_key_id: k, secret_access_key: s, prefix: in}
`,
			want: []string{`flow.yaml:5:5: sink "s3-2" writes into s3://b/in/ at http://127.0.0.1:9000/, as sink "s3" does (flow.yaml:4:5): the two would overwrite each other's files and deliveries would fail with parts missing; give each sink its own place`},
		},
		{
			name: "a sink where the source reads",
			flow: `name: x
source: {local: {path: ./in}}
sinks:
  - local: {path: ./in/out}
`,
			want: []string{`flow.yaml:4:5: sink "local" writes into local directory $DIR/in/out, which the source reads (flow.yaml:2:10): every file delivered would be read again, in a loop; write elsewhere, or exclude it from the source (exclude: ["out/**"])`},
		},
		{
			name: "a sink where the source does not read",
			flow: `name: x
source: {local: {path: ./in, exclude: ["out/**"]}}
sinks:
  - local: {path: ./in/out}
  - local: {path: ./in/.hidden}
`,
		},
		{
			name: "a sink below a source that does not descend",
			flow: `name: x
source: {local: {path: ./in, recursive: false}}
sinks:
  - local: {path: ./in/out}
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "in/a.txt", "a")
			writeFile(t, dir, "flow.yaml", tt.flow)
			real, err := filepath.EvalSymlinks(dir)
			if err != nil {
				t.Fatal(err)
			}
			stdout, stderr, exit := runRunner(t, dir, append(tt.args, "validate", "flow.yaml")...)
			if len(tt.want) == 0 {
				if exit != 0 || stdout != "flow.yaml: ok\n" || stderr != "" {
					t.Errorf("exit %d, stdout %q, stderr %q; want 0, ok, nothing", exit, stdout, stderr)
				}
				return
			}
			if exit != 1 || stdout != "" {
				t.Errorf("exit %d, stdout %q; want 1, nothing", exit, stdout)
			}
			var want []string
			for _, w := range tt.want {
				want = append(want, strings.ReplaceAll(w, "$DIR", real))
			}
			if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
				t.Error("validate created the sink's directory")
			}
		})
	}
}
