package testkit

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseStrace(t *testing.T) {
	log := `101   renameat(AT_FDCWD</w>, "/w/out/.t.tmp", AT_FDCWD</w>, "/w/out/a.txt") = 0
102   syncfs(15</w/out> <unfinished ...>
101   unlinkat(AT_FDCWD</w>, "/w/in/b.txt", 0) = -1 ENOENT (No such file or directory)
101   --- SIGURG {si_signo=SIGURG, si_code=SI_TKILL, si_pid=101, si_uid=0} ---
102   <... syncfs resumed>)             = 0
101   unlinkat(AT_FDCWD</w>, "/w/in/a.txt", 0 <unfinished ...>
101   +++ exited with 0 +++
fsync(3</w/out>) = 0
`
	want := []SysCall{
		{PID: 101, Name: "renameat", Args: `AT_FDCWD</w>, "/w/out/.t.tmp", AT_FDCWD</w>, "/w/out/a.txt"`, Result: "0", Start: 0, End: 0},
		{PID: 102, Name: "syncfs", Args: `15</w/out>`, Result: "0", Start: 1, End: 4},
		{PID: 101, Name: "unlinkat", Args: `AT_FDCWD</w>, "/w/in/b.txt", 0`, Result: "-1 ENOENT (No such file or directory)", Start: 2, End: 2},
		{PID: 101, Name: "unlinkat", Args: `AT_FDCWD</w>, "/w/in/a.txt", 0`, Start: 5, End: 5},
		{Name: "fsync", Args: `3</w/out>`, Result: "0", Start: 7, End: 7},
	}
	got := ParseStrace(log)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ParseStrace (-want +got):\n%s", d)
	}
	if !got[1].OK() || got[2].OK() || got[3].OK() {
		t.Errorf("OK: %v %v %v, want true false false", got[1].OK(), got[2].OK(), got[3].OK())
	}
}
