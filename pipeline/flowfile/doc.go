// Package flowfile reads flow files: YAML files that describe one
// pipeline.Flow each. Load reads a file from disk; Parse reads bytes.
//
// # Format
//
// A flow file holds one flow:
//
//	name: quickstart            # required: 1 to 64 letters, digits, '-' or '_'
//	source:                     # required: exactly one connector
//	  local:                    # the connector's name ...
//	    path: ./examples/inbox  # ... and its config (may be empty)
//	    after: leave
//	stages:                     # optional, applied in order
//	  - match:                  # each item: one stage name and its config
//	      include: ["*.csv"]
//	  - compress: {format: gzip}
//	sinks:                      # required: at least one, at most 64
//	  - name: archive           # optional; defaults to the connector's name
//	    local:                  # exactly one connector
//	      path: ./out
//	    parallelism: 4          # parts of one file written at once (at most 64)
//	    files: 4                # files delivered to this sink at once (at most 256)
//	    retry:
//	      attempts: 5           # tries before a delivery is marked failed (at most 1000)
//	      initial: 1s           # first backoff, doubled on each retry ...
//	      max: 1m               # ... up to this (both at most 24h)
//	    rate: "08:00,10M 18:00,off"  # bandwidth limit of this sink (see Rate)
//	    checksum: sha256        # NAME.sha256 (sha512, md5) beside each file once it committed
//	rate: 50M                   # bandwidth limit of all sinks together (see Rate)
//	bus:                        # optional tuning of the JetStream transport
//	  chunk_size: 1MiB          # payload of one bus message, 4KiB to 64MiB
//	  compression: s2           # s2, zstd or none
//	  files: 4                  # files read from the source at once (at most 256)
//	  readers: 4                # chunks of one file read at once (at most 64)
//	  window: 32MiB             # how far reading may run ahead of the slowest sink (at most 1TiB)
//	  retention: 0s             # keep chunks this long after every sink committed
//	  retention_size: 0         # at most this many bytes of chunks of finished files
//	  payload: bytes            # bytes, reference or auto (see below)
//	  on_change: fail           # fail or reread: a file read by reference that changed
//	schedule:                   # optional: when the source is polled (pipeline.Schedule)
//	  cron: "0 6 * * 1-5"       # ticks: each takes the files there then (watch off)
//	  time_zone: Europe/Berlin  # IANA zone; default the runner's
//	  windows: ["Mon-Fri 06:00-18:00"]   # polls only inside; without cron, polls while open
//	  holidays: ["2026-12-24", "12-25"]  # no poll on these dates (MM-DD: every year)
//	expect:                     # optional: arrival SLAs (pipeline.Expectation, package pipeline/sla)
//	  - name: daily-orders      # default: from the glob ("orders-csv"); unique in the flow
//	    files: "orders-*.csv"   # doublestar glob on the name at the source
//	    by: "Mon-Fri 06:00"     # deadlines: "[DAYS ]HH:MM" or "cron: 0 6 * * 1-5"
//	    time_zone: Europe/Berlin  # default: schedule.time_zone if set, else UTC
//	    count: 1                # files expected per period (1 to 1000)
//	    warn_before: 30m        # sla_warning this long before the deadline (default none)
//	    holidays: ["12-25"]     # no deadline on these dates
//
// Expect: each deadline ends a period that began at the one before; the
// files matching the glob that the source offers in it count for it. Short
// of count files, a period raises sla_warning at deadline − warn_before and
// sla_missed at the deadline; a late file before the next deadline clears
// the miss with sla_met (see package pipeline/sla). DAYS is daily (the
// default), weekdays, weekends, or days and day ranges as in schedule
// windows ("Mon-Fri", "Sat,Sun"). warn_before must be shorter than the
// shortest period, daylight-saving days included.
//
//	notify:                     # optional, at most 32 rules (pipeline.NotifyRule)
//	  - on: [failed, mixed]     # passed, failed, mixed, sla_warning, sla_missed, sla_met
//	    sinks: [archive]        # optional: only outcomes that concern these sinks
//	    webhook:                # or email:, exactly one
//	      url: https://hooks.example.com/mftflow
//	      secret: ${HOOK_SECRET}   # optional: signs the body (X-Mftflow-Signature)
//	      headers: {X-Team: ops}   # optional; values are treated as secrets
//	      timeout: 10s          # per attempt, at most 5m
//	  - on: [failed]
//	    email:
//	      server: smtp.example.com:587   # host:port, or host for the TLS mode's port
//	      tls: starttls         # starttls (default), tls, or none (localhost only)
//	      user: ops             # user and password: both or neither
//	      password: ${SMTP_PASSWORD}
//	      from: mftflow@example.com
//	      to: [ops@example.com]
//	      subject: "{flow}: {outcome} {name}"   # also {size}, {sink}, {file_id}, {detail}
//	      timeout: 30s
//
// Notify: each rule names the events it is told of and one target, a
// webhook or an e-mail (package pipeline/notify sends them and describes
// what they carry). With sinks, a passed file is told only if it
// committed at one of them, a failed or mixed one only if its delivery to
// one of them failed; the names must be sinks of the flow (a sink without
// a name is named after its connector). Problems are reported at the value
// at fault: an unknown event or sink at its list item, a webhook URL that
// is not http or https (quoted by its scheme only: a URL may hold a
// token), a header mftflow sets itself, tls: none for a server that is not
// on this machine, a user without a password, a bad address. The values
// of secret, password and headers are never shown.
//
// Rate: a bandwidth limit in bytes per second, written as rclone's
// --bwlimit: a size ("10M", "512KiB", "10MB"; "off" or 0 for none), or a
// timetable of "HH:MM,LIMIT" entries in order through the day ("08:00,10M
// 18:00,off": 10 MiB/s from 08:00, none from 18:00 until 08:00) or
// "Day-HH:MM,LIMIT" entries in order through the week from Monday
// ("Mon-08:00,512K Sat-00:00,off"). Times are the runner's local time (its
// TZ), as in rclone. A sink's rate holds every part and file written to it
// together; the flow's rate holds what it writes to all sinks together (a
// file sent to two sinks counts twice). Each runner applies its own limit.
//
// Payload: with bytes (the default) every byte of a file goes onto the bus
// and the sinks read it from there. With reference the bus carries, per
// chunk, where its bytes are in the source file and their CRC-32C, and the
// sinks read the bytes from the source again: the source must be able to
// read a file again by its key (local, s3; a local source on one host with
// runners on others must say shared: true) and every stage must leave the
// content alone (match, rename); anything else is refused with the reason.
// auto is reference where that works, bytes otherwise. Files of at most
// 32 KiB carry their bytes either way. A delivery that finds the source file
// changed (another size, time or ETag, or a chunk whose CRC-32C differs)
// commits nothing of it; on_change: fail then fails the file, saying it
// changed during the transfer, and reread reads it again as it is now and
// delivers that version to every sink (at most three times in a row).
//
// Retention: by default a file's chunks leave the bus as the sinks write
// them, so a failed delivery can be replayed ("runner replay") only if its
// chunks happen to be all there still; replay refuses it otherwise. Set
// bus.retention (a duration) or bus.retention_size (a size), or both, to keep
// chunks for replay: chunks then stay in full during delivery, the chunks of
// files every sink committed go once retention has passed since the file
// finished, and whenever the finished files' chunks exceed retention_size the
// files that finished first lose theirs first (files every sink committed
// before files with a failed delivery). Chunks of a file with a failed
// delivery are kept until it is replayed, or until retention_size needs their
// room. Sizes count the files' bytes before bus compression.
//
// Settings left out are zero in the parsed Flow and take their defaults from
// pipeline.Flow.WithDefaults. Counts accept 0 (the default) up to their
// limit (see Limits); sizes are
// a number of bytes or a number with a unit (512KiB, 8MiB, 1GB; see
// pipeline.ParseSize); durations use Go's syntax (500ms, 10s, 1m30s).
//
// A connector's config is checked against its pipeline.Spec from the
// registry: unknown fields, missing required fields and values of the wrong
// type are errors. Component.Config holds the fields the file sets, each
// converted by pipeline.Field.Parse to its Go type (string, int, bool,
// time.Duration, int64 for sizes, []string, map[string]string); defaults are
// left to pipeline.ParseConfig. A strings field also takes a single string,
// and a quoted number or boolean ("5", "true") is accepted where one is
// expected. A field with an empty value (path: or path: ~) counts as not set.
//
// # Limits
//
// Every count has an upper bound, far above what a demanding flow needs, so
// that a slip (an extra zero) is an error at validation rather than a runner
// that starts a goroutine per slot: pipeline.Flow.Check applies the same
// bounds to flows built in Go. They agree with the engine's own: a runner
// holds at most 1024 tasks of one sink and 1024 files not yet final.
//
//	setting             limit   what it bounds
//	sinks               64      sinks per flow (split a wider fan-out into flows)
//	stages              64      stages per flow
//	sinks[].files       256     files delivered at once per sink (a goroutine each)
//	sinks[].parallelism 64      parts of one file written at once (each held in memory)
//	retry.attempts      1000    attempts per delivery
//	retry.initial, max  24h     backoff between attempts
//	bus.files           256     files read from the source at once
//	bus.readers         64      range reads of one file at once (a chunk each in memory)
//	bus.chunk_size      64MiB   payload of one bus message (the largest a NATS
//	                            client buffers); without --nats-url, the runner's
//	                            embedded server carries 8191KiB (8MiB max_payload
//	                            less 1KiB of headers)
//	bus.window          1TiB    reading ahead of the slowest sink (bus storage)
//	expect              64      expectations per flow
//	expect[].count      1000    files expected per period (the ids of those counted are kept)
//
// A setting above its limit is reported at its value, with the limit:
//
//	flow.yaml:9:12: sinks[0].files: 1000000000 is above the limit of 256 files delivered at once per sink; lower it
//
// Connectors bound their own settings the same way (the local sink's
// part_size at 1GiB, the S3 sink's at S3's 5GiB, its concurrency at 64).
//
// # Checks beyond types
//
// A connector whose pipeline.Spec has a Check gets its config checked for
// what the types cannot say, and the problem is reported at the field's
// value: a regular expression that does not compile, an unknown
// {placeholder} or an absolute or ".." name template, a compression level
// out of range, a local source directory that does not exist. When the
// value came from a variable that was not set, the message says so:
//
//	flow.yaml:4:11: local source: field "path": directory /data/inbox does not exist: create it, or correct the path (INBOX is not set, so ${INBOX:/data/inbox} gave "/data/inbox")
//
// A required field whose value is empty, written so or left so by a
// variable ("path: ${OUT:}" with OUT not set), is an error naming the
// variable.
//
// Sinks must not overwrite each other's files: two sinks writing into one
// place (the same local directory, or the same S3 bucket prefix on the same
// endpoint) or one inside the other are refused, as is a sink that writes
// into the directory the source reads, where every file delivered would be
// read again; a source that skips that directory (exclude: ["out/**"], an
// ignore pattern such as ".*", recursive: false for a subdirectory) may
// hold it. A sink's place includes the literal directories its name
// template starts with, so sinks with name "a/{name}" and "b/{name}" in one
// directory are apart. Stages that rename files are not taken into
// account. Both sinks are named, each with its position:
//
//	flow.yaml:12:5: sink "copy" writes into local directory /data/out, as sink "archive" does (flow.yaml:8:5): the two would overwrite each other's files and deliveries would fail with parts missing; give each sink its own place
//
// Options.Chunk bounds bus.chunk_size by what the NATS server carries: the
// runner sets it to its embedded server's max_payload unless --nats-url is
// given (an external server's max_payload is known only once connected,
// and the engine checks it then).
//
// # Environment variables
//
// In every value (never in keys), ${VAR} is replaced by the environment
// variable VAR, and ${VAR:default} by VAR or, if VAR is not set, by default
// (which may be empty: ${VAR:}; it ends at the first "}"). A variable that
// is set to the empty string counts as set. "$$" stands for a single "$", so
// "$${VAR}" is the literal text ${VAR}; a "$" followed by anything else is
// kept as it is. A variable that is not set and has no default is an error.
// Substitution happens after YAML parsing, on the value of each scalar, so
// positions in errors stay those of the file and a variable's value is never
// parsed as YAML: it is a string, converted to the field's type like a
// quoted value. In YAML flow style ({...} and [...]) a value holding ${...}
// must be quoted. Values of Secret fields are never shown in errors.
//
// # YAML features
//
// Anchors, aliases and merge keys ("<<: *defaults") work as in YAML 1.1;
// keys written in a mapping win over merged ones. Duplicate keys are an
// error. A file may hold one YAML document (a trailing empty one is
// ignored). To bound the cost of hostile input, a file larger than
// MaxFileSize, with more than MaxNodes nodes, or whose aliases expand to
// more than MaxNodes further nodes is refused.
//
// # Errors
//
// Parse reports every problem it finds, not just the first, as Errors: one
// *Error per problem, sorted by position, each printed as
// "FILE:LINE:COLUMN: message" with the position of the offending key or
// value:
//
//	flow.yaml:3:5: unknown sink connector "lcoal" (known: local, memory, s3)
//	flow.yaml:7:14: local sink: field "fsync": want true or false, got string maybe
//	flow.yaml:9:3: unknown key "sinkz" (known: name, source, stages, sinks, bus, schedule, rate, expect)
//
//	flow.yaml:9:3: unknown key "sinkz" (known: name, source, stages, sinks, bus, schedule, rate, notify)
//
// The YAML parser gives lines but no columns for syntax errors; those are
// reported at column 1, or at the start of the line for a mis-indented line.
package flowfile
