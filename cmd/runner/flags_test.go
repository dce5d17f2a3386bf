package main

import (
	"testing"
)

// Flag errors are reported before anything happens, so these run in process.
func TestFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--log-format", "xml", "connectors"},
			`runner: invalid argument "xml" for "--log-format" flag: want text or json`},
		{[]string{"--log-level", "loud", "connectors"},
			`runner: invalid argument "loud" for "--log-level" flag: want debug, info, warn or error`},
		{[]string{"run", "--progress", "fancy", "x.yaml"},
			`runner: invalid argument "fancy" for "--progress" flag: want auto, bar, plain or none`},
		{[]string{"run", "--grace", "0s", "x.yaml"},
			`runner: --grace 0s: must be more than 0`},
		{[]string{"run", "--stats", "-1s", "x.yaml"},
			`runner: --stats -1s: must not be negative (0 turns the lines off)`},
		{[]string{"run", "--stats", "soon", "x.yaml"},
			`runner: invalid argument "soon" for "--stats" flag: time: invalid duration "soon"`},
		{[]string{"run"},
			`runner: run needs at least one flow file: runner run FLOW.yaml...`},
		{[]string{"validate"},
			`runner: validate needs at least one flow file: runner validate FLOW.yaml...`},
		{[]string{"--data", "", "status"},
			`runner: --data: must not be empty`},
		{[]string{"--nats-creds", "ops.creds", "status"},
			`runner: --nats-creds needs --nats-url: the embedded server takes no credentials or TLS`},
		{[]string{"--nats-tls-ca", "ca.pem", "run", "x.yaml"},
			`runner: --nats-tls-ca needs --nats-url: the embedded server takes no credentials or TLS`},
		{[]string{"--nats-url", "nats://h:4222", "--nats-tls-cert", "c.pem", "status"},
			`runner: --nats-tls-cert needs --nats-tls-key`},
		{[]string{"--nats-url", "nats://h:4222", "--nats-tls-key", "k.pem", "status"},
			`runner: --nats-tls-key needs --nats-tls-cert`},
		{[]string{"--nats-url", "nats://a:4222,,nats://b:4222", "status"},
			`runner: --nats-url "nats://a:4222,,nats://b:4222": empty URL in the list`},
		{[]string{"--nats-url", "nats://h:4222", "--nats-creds", "/nonexistent/ops.creds", "status"},
			`runner: --nats-creds: stat /nonexistent/ops.creds: no such file or directory`},
		{[]string{"frobnicate"},
			`runner: unknown command "frobnicate" for "runner"`},
		{[]string{"connectors", "--nope"},
			`runner: unknown flag: --nope`},
		{[]string{"connectors", "extra"},
			`runner: unknown command "extra" for "runner connectors"`},
	}
	for _, tt := range tests {
		stdout, stderr, exit := runInProcess(tt.args...)
		if exit != 1 {
			t.Errorf("runner %q: exit %d, want 1", tt.args, exit)
		}
		if stderr != tt.want+"\n" {
			t.Errorf("runner %q: stderr\n got %q\nwant %q", tt.args, stderr, tt.want+"\n")
		}
		if stdout != "" {
			t.Errorf("runner %q: stdout %q, want nothing", tt.args, stdout)
		}
	}
}

func TestOrList(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"a"}, "a"},
		{[]string{"a", "b"}, "a or b"},
		{[]string{"a", "b", "c"}, "a, b or c"},
	} {
		if got := orList(tt.in); got != tt.want {
			t.Errorf("orList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestVersion(t *testing.T) {
	stdout, stderr, exit := runInProcess("version")
	if exit != 0 || stderr != "" || len(stdout) < len("runner x") || stdout[:7] != "runner " {
		t.Errorf("version: exit %d, stdout %q, stderr %q", exit, stdout, stderr)
	}
}
