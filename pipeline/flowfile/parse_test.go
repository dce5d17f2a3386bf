package flowfile

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
)

// env returns a lookup function over m.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestParseFull(t *testing.T) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lookup := env(map[string]string{"BUCKET": "backups", "SECRET": "s3cr3t", "FSYNC": "1"})
	got, err := Parse("full.yaml", data, testRegistry(t), lookup)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	at := func(line, col int) pipeline.Pos { return pipeline.Pos{File: "full.yaml", Line: line, Column: col} }
	retry := pipeline.Retry{Attempts: 3, Initial: 500 * time.Millisecond, Max: 30 * time.Second}
	want := &pipeline.Flow{
		Name: "full-flow_1",
		Pos:  at(2, 1),
		Source: pipeline.Component{Type: "local", Pos: at(4, 3), Config: map[string]any{
			"path":     "./inbox",
			"include":  []string{"*.csv"},
			"after":    "move",
			"interval": 30 * time.Second,
		}},
		Stages: []pipeline.Component{
			{Type: "match", Pos: at(10, 5), Config: map[string]any{
				"include":  []string{"*.csv", "*.txt"},
				"min_size": int64(1024),
			}},
			{Type: "compress", Pos: at(13, 5), Config: map[string]any{}},
			{Type: "compress", Pos: at(14, 5), Config: map[string]any{"format": "zstd", "level": 3}},
		},
		Sinks: []pipeline.SinkSpec{
			{
				Name: "archive",
				Component: pipeline.Component{Type: "local", Pos: at(16, 5), Config: map[string]any{
					"path":      "./out",
					"fsync":     true,
					"part_size": int64(8 << 20),
				}},
				Parallelism: 8,
				Files:       2,
				Retry:       retry,
				Rate:        pipeline.Rate{Slots: []pipeline.RateSlot{{Limit: 10 << 20}}},
			},
			{
				Name: "copy",
				Component: pipeline.Component{Type: "local", Pos: at(28, 5), Config: map[string]any{
					"path":      "./copy/${literal}",
					"fsync":     true,
					"part_size": int64(8 << 20),
				}},
				Retry: retry,
				Rate: pipeline.Rate{Slots: []pipeline.RateSlot{
					{Start: 8 * time.Hour, Limit: 10 << 20}, {Start: 18 * time.Hour},
				}},
			},
			{
				Component: pipeline.Component{Type: "s3", Pos: at(35, 5), Config: map[string]any{
					"bucket":     "backups",
					"secret_key": "s3cr3t",
					"headers":    map[string]string{"x-team": "data", "x-cost": "12"},
					"timeout":    time.Minute,
				}},
			},
			{
				Name:      "mem",
				Component: pipeline.Component{Type: "memory", Pos: at(42, 5), Config: map[string]any{}},
			},
		},
		Bus: pipeline.BusSpec{
			ChunkSize:     512 << 10,
			Compression:   "zstd",
			Files:         2,
			Readers:       3,
			Retention:     time.Hour,
			RetentionSize: 10 << 30,
		},
		Rate: pipeline.Rate{Weekly: true, Slots: []pipeline.RateSlot{
			{Start: 8 * time.Hour, Limit: 50 << 20}, {Start: 5 * 24 * time.Hour},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
	checkParsed(t, testRegistry(t), got)
}

// checkParsed asserts what a successful Parse promises: the flow passes
// Check, and each component's config is accepted by its connector's spec.
func checkParsed(t testing.TB, reg *pipeline.Registry, f *pipeline.Flow) {
	t.Helper()
	if f == nil {
		t.Fatal("Parse returned a nil flow and a nil error")
	}
	if err := f.Check(); err != nil {
		t.Errorf("parsed flow fails Check: %v", err)
	}
	if err := f.WithDefaults().Check(); err != nil {
		t.Errorf("parsed flow with defaults fails Check: %v", err)
	}
	check := func(k pipeline.Kind, c pipeline.Component) {
		spec, ok := reg.Lookup(k, c.Type)
		if !ok {
			t.Errorf("%s %q is not registered", k, c.Type)
			return
		}
		if _, err := pipeline.ParseConfig(spec, c.Config); err != nil {
			t.Errorf("%s %q: config %v fails ParseConfig: %v", k, c.Type, c.Config, err)
		}
	}
	check(pipeline.KindSource, f.Source)
	for _, s := range f.Stages {
		check(pipeline.KindStage, s)
	}
	for _, s := range f.Sinks {
		check(pipeline.KindSink, s.Component)
	}
}

// lines joins its arguments into a file, one per line.
func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }

const (
	srcOK   = "source: {local: {path: ./in}}"
	sinksOK = "sinks: [memory: {}]"
)

// errorCases are broken flow files and the exact errors Parse gives. The
// fuzz test starts from them too.
var errorCases = []struct {
	name string
	in   string
	env  map[string]string
	want string
}{
	// YAML itself.
	{
		name: "empty file",
		in:   "",
		want: `f.yaml:1:1: the file is empty: a flow needs name, source and sinks`,
	},
	{
		name: "only comments",
		in:   "# nothing\n",
		want: `f.yaml:1:1: the file is empty: a flow needs name, source and sinks`,
	},
	{
		name: "unclosed flow mapping",
		in:   lines("name: x", "source: {local: {path: x}", sinksOK),
		want: `f.yaml:2:1: did not find expected ',' or '}'`,
	},
	{
		name: "bad indentation",
		in:   lines("name: x", "source:", "  local:", "    path: a", "   after: b", sinksOK),
		want: `f.yaml:5:4: did not find expected key: check the indentation of this line`,
	},
	{
		name: "list item in a mapping",
		in:   lines("name: x", srcOK, "- memory: {}"),
		want: `f.yaml:3:1: did not find expected key: check the indentation of this line`,
	},
	{
		name: "tab indentation",
		in:   lines("name: x", "source:", "\tlocal: {}"),
		want: `f.yaml:3:1: found character that cannot start any token`,
	},
	{
		name: "unterminated quote",
		in:   lines("name: x", `source: {local: {path: "./in}}`, sinksOK),
		want: `f.yaml:2:1: found unexpected end of stream`,
	},
	{
		name: "mapping value on one line",
		in:   lines("name: x", "source: local: {}", sinksOK),
		want: `f.yaml:2:1: mapping values are not allowed in this context`,
	},
	{
		name: "undefined alias",
		in:   lines("name: x", "source: {local: {path: *inbox}}", sinksOK),
		want: `f.yaml:2:24: alias *inbox refers to an anchor that is not defined before it (define it with &inbox first)`,
	},
	{
		name: "invalid UTF-8",
		in:   lines("name: x", "source: {local: {path: \xff}}", sinksOK),
		want: `f.yaml:2:24: invalid UTF-8 (byte 0xff): a flow file must be UTF-8 text`,
	},
	{
		name: "control character",
		in:   lines("name: x\x00", srcOK, sinksOK),
		want: `f.yaml:1:8: control character U+0000 is not allowed in a flow file`,
	},
	{
		name: "second document",
		in:   lines("name: x", srcOK, sinksOK, "---", "name: y"),
		want: `f.yaml:5:1: a flow file holds one flow: this second YAML document (after "---") is not allowed; put each flow in its own file`,
	},
	{
		name: "duplicate keys",
		in:   lines("name: x", srcOK, sinksOK, "source: {local: {path: a, path: b}}"),
		want: lines(
			`f.yaml:4:1: duplicate key "source" (first at 2:1)`,
			`f.yaml:4:27: duplicate key "path" (first at 4:18)`,
		),
	},
	{
		name: "top level is a list",
		in:   lines("- name: x"),
		want: `f.yaml:1:1: want a mapping with name, source and sinks at the top of the file, got a list`,
	},

	// The flow's own keys.
	{
		name: "unknown top-level key",
		in:   lines("name: x", srcOK, "sinkz: [memory: {}]"),
		want: lines(
			`f.yaml:1:1: missing sinks: add "sinks:" with at least one sink (known: local, memory, s3)`,
			`f.yaml:3:1: unknown key "sinkz" (known: name, source, stages, sinks, bus, schedule, rate, audit, expect, notify)`,
		),
	},
	{
		name: "missing everything",
		in:   lines("stages: []"),
		want: lines(
			`f.yaml:1:1: missing name: add "name: my-flow" (1 to 64 letters, digits, '-' or '_')`,
			`f.yaml:1:1: missing source: add "source:" with one connector (known: local, s3)`,
			`f.yaml:1:1: missing sinks: add "sinks:" with at least one sink (known: local, memory, s3)`,
		),
	},
	{
		name: "empty values",
		in:   lines("name:", "source:", "sinks:"),
		want: lines(
			`f.yaml:1:1: flow name is empty: use 1 to 64 letters, digits, '-' or '_'`,
			`f.yaml:2:1: source needs exactly one connector key, found none (known: local, s3)`,
			`f.yaml:3:1: sinks is empty: add at least one sink (known: local, memory, s3)`,
		),
	},
	{
		name: "bad flow name",
		in:   lines("name: quick start", srcOK, sinksOK),
		want: `f.yaml:1:7: flow name "quick start": use 1 to 64 letters, digits, '-' or '_'`,
	},
	{
		name: "name is a list",
		in:   lines("name: [a]", srcOK, sinksOK),
		want: `f.yaml:1:7: name: want a string, got a list`,
	},
	{
		name: "wrong kinds",
		in:   lines("name: x", "source: local", "stages: {match: {}}", "sinks: {memory: {}}", "bus: [s2]"),
		want: lines(
			`f.yaml:2:9: source: want a mapping with one connector key, got a string`,
			`f.yaml:3:9: stages: want a list of stages, got a mapping`,
			`f.yaml:4:8: sinks: want a list of sinks, got a mapping`,
			`f.yaml:5:6: bus: want a mapping with chunk_size, compression, files, readers, window, retention, retention_size, payload, on_change, got a list`,
		),
	},
	{
		name: "empty sinks list",
		in:   lines("name: x", srcOK, "sinks: []"),
		want: `f.yaml:3:8: sinks is empty: add at least one sink (known: local, memory, s3)`,
	},

	// Connectors.
	{
		name: "unknown sink connector",
		in:   lines("name: x", srcOK, "sinks:", "  - lcoal:", "      path: ./out"),
		want: `f.yaml:4:5: unknown sink connector "lcoal" (known: local, memory, s3)`,
	},
	{
		name: "unknown source connector",
		in:   lines("name: x", "source: {ftp: {host: x}}", sinksOK),
		want: `f.yaml:2:10: unknown source connector "ftp" (known: local, s3)`,
	},
	{
		name: "unknown stage",
		in:   lines("name: x", srcOK, "stages:", "  - cmpress: {}", sinksOK),
		want: `f.yaml:4:5: unknown stage "cmpress" (known: compress, match)`,
	},
	{
		name: "sink without connector",
		in:   lines("name: x", srcOK, "sinks:", "  - name: a", "    parallelism: 2"),
		want: `f.yaml:4:5: sink needs exactly one connector key, found none (known: local, memory, s3)`,
	},
	{
		name: "empty source mapping",
		in:   lines("name: x", "source: {}", sinksOK),
		want: `f.yaml:2:9: source needs exactly one connector key, found none (known: local, s3)`,
	},
	{
		name: "two sources",
		in:   lines("name: x", "source:", "  local: {path: a}", "  s3: {bucket: b, secret_key: k}", sinksOK),
		want: `f.yaml:4:3: source has two connectors "local" and "s3": a flow has exactly one source`,
	},
	{
		name: "two sink connectors",
		in:   lines("name: x", srcOK, "sinks:", "  - memory: {}", "    local: {path: a}"),
		want: `f.yaml:5:5: sink has two connectors "memory" and "local": give each its own item under sinks`,
	},
	{
		name: "two stage names",
		in:   lines("name: x", srcOK, "stages:", "  - match: {}", "    compress: {}", sinksOK),
		want: `f.yaml:5:5: stage has two names "match" and "compress": put each stage in its own list item`,
	},
	{
		name: "stage without key",
		in:   lines("name: x", srcOK, "stages: [{}]", sinksOK),
		want: `f.yaml:3:10: stage needs exactly one key, the stage name, found none (known: compress, match)`,
	},
	{
		name: "stage as a string",
		in:   lines("name: x", srcOK, "stages: [compress, gzip]", sinksOK),
		want: lines(
			`f.yaml:3:10: stage 1: want a mapping with the stage name as its key, got a string (write "compress: {}" for a stage without settings)`,
			`f.yaml:3:20: stage 2: want a mapping with the stage name as its key, got a string`,
		),
	},
	{
		name: "config field not indented",
		in:   lines("name: x", "source:", "  local:", "  path: ./in", sinksOK),
		want: lines(
			`f.yaml:3:3: local source: missing required field "path"`,
			`f.yaml:4:3: "path" is a field of the local source: indent it under "local:"`,
		),
	},
	{
		name: "stage field not indented",
		in:   lines("name: x", srcOK, "stages:", "  - match:", "    include: '*.csv'", sinksOK),
		want: `f.yaml:5:5: "include" is a field of the match stage: indent it under "match:"`,
	},
	{
		name: "unknown sink key",
		in:   lines("name: x", srcOK, "sinks:", "  - memory: {}", "    parallelizm: 3"),
		want: `f.yaml:5:5: unknown key "parallelizm" (known: name, parallelism, files, retry, rate, checksum and one sink connector: local, memory, s3)`,
	},
	{
		name: "config is a list",
		in:   lines("name: x", "source: {local: [./in]}", sinksOK),
		want: `f.yaml:2:17: local source: want a mapping of config fields, got a list`,
	},

	// Config fields.
	{
		name: "unknown field",
		in:   lines("name: x", "source:", "  local:", "    path: ./in", "    pathh: ./in", sinksOK),
		want: `f.yaml:5:5: local source: unknown field "pathh" (known: path, include, after, interval)`,
	},
	{
		name: "unknown field of a connector without fields",
		in:   lines("name: x", srcOK, "sinks: [memory: {size: 1}]"),
		want: `f.yaml:3:18: memory sink: unknown field "size" (known: none)`,
	},
	{
		name: "missing required field",
		in:   lines("name: x", srcOK, "sinks:", "  - local:", "      fsync: true"),
		want: `f.yaml:5:7: local sink: missing required field "path"`,
	},
	{
		name: "missing required field, no config",
		in:   lines("name: x", "source:", "  local:", sinksOK),
		want: `f.yaml:3:3: local source: missing required field "path"`,
	},
	{
		name: "empty required field",
		in:   lines("name: x", "source:", "  local:", "    path:", sinksOK),
		want: `f.yaml:4:5: local source: required field "path" is empty`,
	},
	{
		name: "bool",
		in:   lines("name: x", srcOK, "sinks:", "  - local: {path: ./out, fsync: maybe}"),
		want: `f.yaml:4:33: local sink: field "fsync": want true or false, got string maybe`,
	},
	{
		name: "enum",
		in:   lines("name: x", "source: {local: {path: ./in, after: leav}}", sinksOK),
		want: `f.yaml:2:37: local source: field "after": want one of leave, delete, move, got "leav"`,
	},
	{
		name: "int",
		in:   lines("name: x", srcOK, "stages: [compress: {level: high}]", sinksOK),
		want: `f.yaml:3:28: compress stage: field "level": want an integer, got string high`,
	},
	{
		name: "int from a float",
		in:   lines("name: x", srcOK, "stages: [compress: {level: 1.5}]", sinksOK),
		want: `f.yaml:3:28: compress stage: field "level": want an integer, got float64 1.5`,
	},
	{
		name: "size",
		in:   lines("name: x", srcOK, "stages: [match: {min_size: 1 potato}]", sinksOK),
		want: `f.yaml:3:28: match stage: field "min_size": want a size such as 1048576, 512KiB, 8MiB or 1GB, got string 1 potato`,
	},
	{
		name: "duration",
		in:   lines("name: x", "source: {local: {path: ./in, interval: 5}}", sinksOK),
		want: `f.yaml:2:40: local source: field "interval": want a duration such as 500ms, 10s or 1m30s, got int 5`,
	},
	{
		name: "string given a list",
		in:   lines("name: x", "source: {local: {path: [a, b]}}", sinksOK),
		want: `f.yaml:2:24: local source: field "path": want a string, got a list`,
	},
	{
		name: "strings given a mapping",
		in:   lines("name: x", "source: {local: {path: a, include: {a: b}}}", sinksOK),
		want: `f.yaml:2:36: local source: field "include": want a list of strings, got a mapping`,
	},
	{
		name: "strings with a list item",
		in:   lines("name: x", "source: {local: {path: a, include: [a, [b]]}}", sinksOK),
		want: `f.yaml:2:40: local source: field "include": want a list of strings, item 2 is a list`,
	},
	{
		name: "stringmap given a list",
		in:   lines("name: x", srcOK, "sinks: [s3: {bucket: b, secret_key: k, headers: [a]}]"),
		want: `f.yaml:3:49: s3 sink: field "headers": want a map of strings, got a list`,
	},
	{
		name: "stringmap with an empty value",
		in:   lines("name: x", srcOK, "sinks: [s3: {bucket: b, secret_key: k, headers: {a: ~}}]"),
		want: `f.yaml:3:53: s3 sink: field "headers": want a map of strings, key "a" is an empty value`,
	},
	{
		name: "secret given a list",
		in:   lines("name: x", srcOK, "sinks: [s3: {bucket: b, secret_key: [hunter2]}]"),
		want: `f.yaml:3:37: s3 sink: field "secret_key": want a string, got a list`,
	},
	{
		name: "secret enum",
		in:   lines("name: x", srcOK, "sinks: [s3: {bucket: b, secret_key: k, sse: hunter2}]"),
		want: `f.yaml:3:45: s3 sink: field "sse": want one of aes256, kms`,
	},

	{
		name: "checksum",
		in:   lines("name: x", srcOK, "sinks:", "  - memory: {}", "    checksum: crc32"),
		want: `f.yaml:5:15: sinks[0].checksum: want one of sha256, sha512, md5, got "crc32"`,
	},

	// The schedule.
	{
		name: "schedule",
		in: lines("name: x", srcOK, sinksOK, "schedule:", `  cron: "0 6 * * 1-5"`, "  time_zone: Europe/Berlin",
			"  windows:", `    - Mon-Fri 08:00-18:00`, `    - "Wed 17:00-19:00"`, "  every: 5m"),
		want: lines(
			`f.yaml:9:7: schedule.windows[1]: "Wed 17:00-19:00" overlaps windows[0] "Mon-Fri 08:00-18:00" on Wed 17:00: merge them or make them apart`,
			`f.yaml:10:3: unknown key "every" (known: cron, time_zone, windows, holidays)`,
		),
	},
	{
		name: "schedule cron",
		in:   lines("name: x", srcOK, sinksOK, "schedule: {cron: every hour, holidays: [2026-12-24]}"),
		want: `f.yaml:4:18: schedule.cron: "every hour": expected exactly 5 fields, found 2: [every hour]: want five fields (minute hour day-of-month month day-of-week) such as "0 6 * * 1-5", or @hourly, @daily, @every 15m`,
	},
	{
		name: "schedule holiday",
		in:   lines("name: x", srcOK, sinksOK, "schedule: {holidays: [2026-12-24, Christmas]}"),
		want: `f.yaml:4:35: schedule.holidays[1]: "Christmas" is not a date: want 2026-12-24, or 12-25 for every year`,
	},

	// Arrival expectations.
	{
		name: "expect settings",
		in: lines("name: x", srcOK, sinksOK, "expect:",
			`  - files: "orders-[*.csv"`, `    by: "Mon-Fry 06:00"`, "    time_zone: Europe/Berlinn", "    count: 0",
			"    warn_before: -1m", "    holidays: [2026-12-25, Xmas]", "    colour: red"),
		want: lines(
			`f.yaml:5:12: expect[0].files: "orders-[*.csv" is not a valid glob: close every "[" and "{", or escape them with "\"`,
			`f.yaml:6:9: expect[0].by: "Mon-Fry 06:00": "Mon-Fry" is not a day or day range (Mon, Tue, Wed, Thu, Fri, Sat, Sun), or daily, weekdays, weekends: want "[DAYS ]HH:MM" such as "Mon-Fri 06:00", "daily 06:00" or "Sat,Sun 09:30", or "cron: 0 6 * * 1-5"`,
			`f.yaml:7:16: expect[0].time_zone: unknown time zone "Europe/Berlinn": use an IANA name such as Europe/Berlin or UTC`,
			`f.yaml:8:12: expect[0].count: must be at least 1 (the files expected per period), got 0`,
			`f.yaml:9:18: expect[0].warn_before: want a duration such as 500ms, 10s or 1m30s, got string -1m`,
			`f.yaml:10:28: expect[0].holidays[1]: "Xmas" is not a date: want 2026-12-24, or 12-25 for every year`,
			`f.yaml:11:5: unknown key "colour" (known: name, files, by, time_zone, count, warn_before, holidays)`,
		),
	},
	{
		name: "expect deadlines",
		in: lines("name: x", srcOK, sinksOK, "expect:",
			`  - {name: a, files: a, by: "weekdays 06:00 Europe/Berlin"}`,
			`  - {name: b, files: b, by: "cron: @every 1h"}`,
			`  - {name: c, files: c, by: "cron: 0 6 * *"}`,
			`  - {name: d, files: d, by: "25:00"}`,
			`  - {name: e, files: e}`,
			`  - {name: f, files: f, by: "cron: 0 6 30 2 *"}`),
		want: lines(
			`f.yaml:5:29: expect[0].by: "weekdays 06:00 Europe/Berlin": write the time zone under time_zone, not in by: want "[DAYS ]HH:MM" such as "Mon-Fri 06:00", "daily 06:00" or "Sat,Sun 09:30", or "cron: 0 6 * * 1-5"`,
			`f.yaml:6:29: expect[1].by: "cron: @every 1h": @every counts from whenever the runner starts, so it has no fixed deadlines: write a cron expression such as "cron: 0 */4 * * *"`,
			`f.yaml:7:29: expect[2].by: "cron: 0 6 * *": expected exactly 5 fields, found 4: [0 6 * *]: want five fields (minute hour day-of-month month day-of-week) such as "cron: 0 6 * * 1-5", or @daily, @weekly`,
			`f.yaml:8:29: expect[3].by: "25:00": "25:00" is not a time of day (00:00 to 24:00): want "[DAYS ]HH:MM" such as "Mon-Fri 06:00", "daily 06:00" or "Sat,Sun 09:30", or "cron: 0 6 * * 1-5"`,
			`f.yaml:9:5: expect[4].by: missing: say by when the files are due, such as "Mon-Fri 06:00"`,
			`f.yaml:10:29: expect[5].by: "cron: 0 6 30 2 *" names no deadline within five years (holidays left out): name more days, or fewer holidays`,
		),
	},
	{
		name: "expect warn_before",
		in: lines("name: x", srcOK, sinksOK, "schedule: {time_zone: Europe/Berlin}", "expect:",
			`  - {files: a, by: "daily 06:00", warn_before: 23h30m}`,
			`  - {files: b, by: "cron: */15 8-17 * * *", warn_before: 15m, time_zone: UTC}`),
		want: lines(
			`f.yaml:6:48: expect[0].warn_before: 23h30m0s is not shorter than the shortest period, 23h0m0s (from Sat 2026-03-28 06:00 CET to Sun 2026-03-29 06:00 CEST): the warning would come before the period begins; shorten it`,
			`f.yaml:7:58: expect[1].warn_before: 15m0s is not shorter than the shortest period, 15m0s (from Thu 2026-01-01 08:00 UTC to Thu 2026-01-01 08:15 UTC): the warning would come before the period begins; shorten it`,
		),
	},
	{
		name: "expect names",
		in: lines("name: x", srcOK, sinksOK, "expect:",
			`  - {files: "orders-*.csv", by: "06:00"}`,
			`  - {files: "orders-*.csv", by: "07:00"}`,
			`  - {name: orders-csv, files: "x", by: "08:00"}`,
			`  - {name: "a b", files: "y", by: "08:00"}`),
		want: lines(
			`f.yaml:6:5: expect[1]: the name "orders-csv", taken from files "orders-*.csv", is used twice (first at 5:5): give this expectation a name`,
			`f.yaml:7:12: expect[2].name: "orders-csv" is used twice (first at 5:5): give each expectation its own name`,
			`f.yaml:8:12: expect[3].name: "a b": use 1 to 64 letters, digits, '-' or '_'`,
		),
	},
	{
		name: "expect shapes",
		in:   lines("name: x", srcOK, sinksOK, "expect: [orders, {by: 06:00}]"),
		want: lines(
			`f.yaml:4:10: expect[0]: want a mapping with files and by, got a string`,
			`f.yaml:4:18: expect[1].files: missing: give the glob of the expected file names, such as "orders-*.csv"`,
		),
	},
	{
		name: "expect mapping",
		in:   lines("name: x", srcOK, sinksOK, "expect: {files: a, by: '06:00'}"),
		want: `f.yaml:4:9: expect: want a list of expectations, each with files and by, got a mapping`,
	},

	// Sink, retry and bus settings.
	{
		name: "sink settings",
		in: lines("name: x", srcOK, "sinks:",
			"  - memory: {}", "    name: a b", "    parallelism: -1", "    files: four",
			"  - memory: {}", "    name: dup", "  - memory: {}", "    name: dup"),
		want: lines(
			`f.yaml:5:11: sink name "a b": use 1 to 64 letters, digits, '-' or '_'`,
			`f.yaml:6:18: sinks[0].parallelism: must not be negative, got -1`,
			`f.yaml:7:12: sinks[0].files: want an integer, got string four`,
			`f.yaml:11:11: sink name "dup" is used twice (first at 9:11): give each sink its own name`,
		),
	},
	{
		name: "sink item is a list",
		in:   lines("name: x", srcOK, "sinks: [[memory]]"),
		want: `f.yaml:3:9: sink 1: want a mapping with a connector key, got a list`,
	},
	{
		name: "retry",
		in: lines("name: x", srcOK, "sinks:", "  - memory: {}", "    retry:",
			"      attempts: 1.5", "      initial: 1m", "      max: 10s", "      jitter: 1s"),
		want: lines(
			`f.yaml:6:17: sinks[0].retry.attempts: want an integer, got float64 1.5`,
			`f.yaml:7:16: sinks[0].retry.initial 1m0s is longer than retry.max 10s`,
			`f.yaml:9:7: unknown key "jitter" (known: attempts, initial, max)`,
		),
	},
	{
		name: "retry is a number",
		in:   lines("name: x", srcOK, "sinks: [{memory: {}, retry: 5}]"),
		want: `f.yaml:3:29: retry: want a mapping with attempts, initial and max, got a number`,
	},
	{
		name: "bus",
		in: lines("name: x", srcOK, sinksOK, "bus:", "  chunk_size: 1KB", "  compression: lz4",
			"  files: -2", "  readers: x", "  retention: -1s", "  chunksize: 1MiB"),
		want: lines(
			`f.yaml:5:15: bus.chunk_size: 1000 bytes is too small: use at least 4KiB`,
			`f.yaml:6:16: bus.compression: want one of s2, zstd, none, got "lz4"`,
			`f.yaml:7:10: bus.files: must not be negative, got -2`,
			`f.yaml:8:12: bus.readers: want an integer, got string x`,
			`f.yaml:9:14: bus.retention: want a duration such as 500ms, 10s or 1m30s, got string -1s`,
			`f.yaml:10:3: unknown key "chunksize" (known: chunk_size, compression, files, readers, window, retention, retention_size, payload, on_change)`,
		),
	},
	{
		name: "bus payload",
		in:   lines("name: x", srcOK, sinksOK, "bus:", "  payload: refs", "  on_change: ignore"),
		want: lines(
			`f.yaml:5:12: bus.payload: want one of bytes, reference, auto, got "refs"`,
			`f.yaml:6:14: bus.on_change: want one of fail, reread, got "ignore"`,
		),
	},
	{
		name: "bus payload reference with a stage that changes the content",
		in:   lines("name: x", srcOK, "stages: [match: {}, compress: {}]", sinksOK, "bus:", "  payload: reference"),
		want: lines(
			`f.yaml:6:12: bus.payload reference: stage 2 (compress) changes or reads the content, so the bytes a sink needs exist only after it: remove the stage; use bus.payload bytes, or auto to read by reference only where it can`,
		),
	},
	{
		name: "bus payload reference from a source that hands files out once",
		in:   lines("name: x", "source: {s3: {bucket: b, secret_key: k}}", sinksOK, "bus: {payload: reference}"),
		want: lines(
			`f.yaml:4:16: bus.payload reference: source "s3" hands each file out once: a file taken from it cannot be read again; use bus.payload bytes, or auto to read by reference only where it can`,
		),
	},
	{
		name: "bus retention size",
		in: lines("name: x", srcOK, sinksOK, "bus:", "  retention: 24h", "  retention_size: lots",
			"  retention-size: 1GiB"),
		want: lines(
			`f.yaml:6:19: bus.retention_size: want a size such as 1048576, 512KiB, 8MiB or 1GB, got string lots`,
			`f.yaml:7:3: unknown key "retention-size" (known: chunk_size, compression, files, readers, window, retention, retention_size, payload, on_change)`,
		),
	},
	{
		name: "bus retention size negative",
		in:   lines("name: x", srcOK, sinksOK, "bus: {retention_size: -5}"),
		want: `f.yaml:4:23: bus.retention_size: want a size such as 1048576, 512KiB, 8MiB or 1GB, got int -5`,
	},
	{
		name: "bus retention size is a list",
		in:   lines("name: x", srcOK, sinksOK, "bus: {retention_size: [1GiB]}"),
		want: `f.yaml:4:23: bus.retention_size: want a size such as 1048576, 512KiB, 8MiB or 1GB, got a list`,
	},
	{
		name: "bus chunk size",
		in:   lines("name: x", srcOK, sinksOK, "bus: {chunk_size: big}"),
		want: `f.yaml:4:19: bus.chunk_size: want a size such as 1048576, 512KiB, 8MiB or 1GB, got string big`,
	},

	// Environment variables.
	{
		name: "unset variable",
		in:   lines("name: x", "source:", "  s3:", "    bucket: b", "    secret_key: ${TOKEN}", sinksOK),
		want: `f.yaml:5:17: environment variable "TOKEN" is not set (use ${TOKEN:default} for a default)`,
	},
	{
		name: "unclosed variable",
		in:   lines("name: x", "source: {local: {path: '${HOME/in'}}", sinksOK),
		want: `f.yaml:2:24: unclosed "${": end the variable with "}" or write "$${" for a literal "${"`,
	},
	{
		name: "invalid variable name",
		in:   lines("name: x", "source: {local: {path: '${1HOME}/in'}}", sinksOK),
		want: `f.yaml:2:24: invalid variable name "1HOME" in "${...}": use letters, digits and '_', not starting with a digit (write "$${" for a literal "${")`,
	},
	{
		name: "variable converted after substitution",
		in:   lines("name: x", srcOK, sinksOK, "bus:", "  files: ${FILES}", "  readers: ${READERS}"),
		env:  map[string]string{"FILES": "2", "READERS": "many"},
		want: `f.yaml:6:12: bus.readers: want an integer, got string many`,
	},
	{
		name: "secret from the environment is not shown",
		in:   lines("name: x", srcOK, "sinks: [s3: {bucket: b, secret_key: k, sse: '${SSE}'}]"),
		env:  map[string]string{"SSE": "hunter2"},
		want: `f.yaml:3:45: s3 sink: field "sse": want one of aes256, kms`,
	},
	{
		name: "keys are not substituted",
		in:   lines("name: x", srcOK, sinksOK, "${KEY}: 1"),
		env:  map[string]string{"KEY": "bus"},
		want: `f.yaml:4:1: unknown key "${KEY}" (known: name, source, stages, sinks, bus, schedule, rate, audit, expect, notify)`,
	},

	// Anchors, aliases and merge keys.
	{
		name: "alias inside its own anchor",
		in:   lines("name: x", "source: {local: &l {path: x, include: *l}}", sinksOK),
		want: `f.yaml:2:17: local source: field "include": want a list of strings, got a mapping`,
	},
	{
		name: "merge inside its own anchor",
		in:   lines("name: x", "source: {local: &l {path: x, <<: *l}}", sinksOK),
		want: `f.yaml:2:34: alias *l is used inside its own anchor`,
	},
	{
		name: "merge of a scalar",
		in:   lines("name: x", srcOK, sinksOK, "bus: {<<: 1}"),
		want: `f.yaml:4:11: merge key "<<": want a mapping or a list of mappings, got a number`,
	},
	{
		name: "error in an anchor used twice is reported once",
		in:   lines("name: x", srcOK, "sinks:", "  - local: &l {path: a, fsync: maybe}", "  - local: *l"),
		want: `f.yaml:4:32: local sink: field "fsync": want true or false, got string maybe`,
	},
	{
		name: "key that is not a string",
		in:   lines("name: x", "source: {local: {path: a, [b]: c}}", sinksOK),
		want: `f.yaml:2:27: a key must be a string, got a list`,
	},

	// Bandwidth limits.
	{
		name: "flow rate that is not a size",
		in:   lines("name: x", `rate: 10 MB/s`, srcOK, sinksOK),
		want: `f.yaml:2:7: rate: "10 MB/s" is not a size or a timetable: write 10MB, 512KiB, off, or "08:00,10M 18:00,off"`,
	},
	{
		name: "sink rate with a bad time, at the entry",
		in:   lines("name: x", srcOK, "sinks:", `  - memory: {}`, `    rate: "08:00,10M 25:00,off"`),
		want: `f.yaml:5:22: sinks[0].rate: timetable entry "25:00,off": "25:00" is not a time of day: write HH:MM from 00:00 to 23:59`,
	},
	{
		name: "timetable out of order, plain and single-quoted",
		in: lines("name: x", srcOK, "sinks:", `  - memory: {}`, `    rate: 18:00,off 08:00,10M`,
			`  - memory: {}`, `    rate: '08:00,1M 08:00,2M'`),
		want: lines(
			`f.yaml:5:21: sinks[0].rate: timetable entry "08:00,10M" comes after "18:00,off": list the entries in order through the day`,
			`f.yaml:7:21: sinks[1].rate: timetable entry "08:00,2M" is at the same time as "08:00,1M": give each time one limit`),
	},
	{
		name: "weekly timetable with a day-less entry",
		in:   lines("name: x", `rate: "Mon-08:00,1M 18:00,off"`, srcOK, sinksOK),
		want: `f.yaml:2:21: rate: timetable entry "18:00,off" has no day but "Mon-08:00,1M" has one: give every entry a day, or none`,
	},
	{
		name: "rate from a variable is reported at the value",
		in:   lines("name: x", `rate: ${RATE}`, srcOK, sinksOK),
		env:  map[string]string{"RATE": "08:00,1M 9:00,2M 7:00,off"},
		want: `f.yaml:2:7: rate: timetable entry "7:00,off" comes after "9:00,2M": list the entries in order through the day`,
	},
	{
		name: "rate that is a mapping",
		in:   lines("name: x", srcOK, "sinks:", `  - memory: {}`, `    rate: {limit: 1M}`),
		want: `f.yaml:5:11: sinks[0].rate: want a size or a timetable, got a mapping: write 10MB, 512KiB, off, or "08:00,10M 18:00,off"`,
	},
	{
		name: "rate without a unit",
		in:   lines("name: x", "rate: 512", srcOK, sinksOK),
		want: `f.yaml:2:7: rate: 512 bytes/s is below the least limit of 1KiB/s: write a unit, such as 512K or 512M, or off`,
	},
}

func TestParseErrors(t *testing.T) {
	reg := testRegistry(t)
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("f.yaml", []byte(tt.in), reg, env(tt.env))
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want error:\n%s", f, tt.want)
			}
			if f != nil {
				t.Errorf("Parse returned a flow with its error")
			}
			if diff := cmp.Diff(strings.TrimSuffix(tt.want, "\n"), err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMergeKeys(t *testing.T) {
	in := lines(
		"name: x",
		"source:",
		"  local:",
		"    <<: [{path: first, after: move}, {path: second, interval: 1s}]",
		"    after: delete",
		"sinks: [memory: {}]",
	)
	f, err := Parse("f.yaml", []byte(in), testRegistry(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"path": "first", "after": "delete", "interval": time.Second}
	if diff := cmp.Diff(want, f.Source.Config); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
}

func TestParseNilLookupUsesEnvironment(t *testing.T) {
	t.Setenv("FLOWFILE_TEST_NAME", "from-env")
	f, err := Parse("f.yaml", []byte(lines("name: ${FLOWFILE_TEST_NAME}", srcOK, sinksOK)), testRegistry(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "from-env" {
		t.Errorf("Name = %q, want from-env", f.Name)
	}
}

// expect is parsed as written, wherever it stands; WithDefaults names an
// expectation after its glob and gives it the schedule's zone.
func TestParseExpect(t *testing.T) {
	in := lines("name: x", srcOK, sinksOK,
		"expect:",
		"  - name: daily-orders",
		`    files: "orders-*.csv"`,
		`    by: "Mon-Fri 06:00"`,
		"    time_zone: Europe/Berlin",
		"    count: 2",
		"    warn_before: 30m",
		`    holidays: [2026-12-25, "01-01"]`,
		`  - files: "**/*.xml"`,
		`    by: "cron: 0 6 * * 1-5"`,
		"schedule: {time_zone: America/New_York}")
	f, err := Parse("f.yaml", []byte(in), testRegistry(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkParsed(t, testRegistry(t), f)
	at := func(line, col int) pipeline.Pos { return pipeline.Pos{File: "f.yaml", Line: line, Column: col} }
	want := []pipeline.Expectation{
		{Name: "daily-orders", Files: "orders-*.csv", By: "Mon-Fri 06:00", TimeZone: "Europe/Berlin", Count: 2,
			WarnBefore: 30 * time.Minute, Holidays: []string{"2026-12-25", "01-01"}, Pos: at(5, 5)},
		{Files: "**/*.xml", By: "cron: 0 6 * * 1-5", Pos: at(12, 5)},
	}
	if diff := cmp.Diff(want, f.Expectations); diff != "" {
		t.Errorf("expectations (-want +got):\n%s", diff)
	}
	want[1].Name, want[1].Count, want[1].TimeZone = "xml", 1, "America/New_York"
	if diff := cmp.Diff(want, f.WithDefaults().Expectations); diff != "" {
		t.Errorf("expectations with defaults (-want +got):\n%s", diff)
	}
}
