package host

import (
	"runtime/debug"
	"testing"
)

func TestArena(t *testing.T) {
	a, err := newArena()
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	x, ok1 := a.alloc(100)       // one page
	y, ok2 := a.alloc(3 * 4096)  // three pages
	z, ok3 := a.alloc(arenaSize) // too big now
	if !ok1 || !ok2 || ok3 || x != 0 || y != 4096 {
		t.Fatalf("alloc: %d %v, %d %v, %d %v; want 0 true, 4096 true, false", x, ok1, y, ok2, z, ok3)
	}
	copy(a.mem[y:], "part")
	a.release(x, 100)
	if got, ok := a.alloc(4096); !ok || got != 0 {
		t.Fatalf("after release, alloc(4096) = %d %v; want the freed page at 0", got, ok)
	}
	a.release(0, 4096)
	a.release(y, 3*4096)
	// Everything merged back into one span: the whole arena is free.
	if len(a.free) != 1 || a.free[0] != (span{0, arenaSize}) {
		t.Fatalf("free list %v; want one span of the whole arena", a.free)
	}
	if got, ok := a.alloc(arenaSize); !ok || got != 0 {
		t.Fatalf("alloc(arenaSize) = %d %v; want 0 true", got, ok)
	}
}

// The pages parts have used stay resident: the Go memory limit is lowered by
// them while the arena lives, down to half, and given back when it closes.
func TestArenaLowersTheMemoryLimit(t *testing.T) {
	const limit = 160 << 20
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(limit))
	a, err := newArena()
	if err != nil {
		t.Fatal(err)
	}
	off, _ := a.alloc(8 << 20)
	a.release(off, 8<<20)
	a.alloc(4 << 20) // reuses the first pages: nothing more is resident
	if got := debug.SetMemoryLimit(-1); got != limit-8<<20 {
		t.Errorf("limit with 8 MiB of parts resident: %d, want %d", got, limit-8<<20)
	}
	a.alloc(100 << 20)
	if got := debug.SetMemoryLimit(-1); got != limit/2 {
		t.Errorf("limit with 108 MiB resident: %d, want half of %d", got, limit)
	}
	a.close()
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Errorf("limit after close: %d, want %d again", got, limit)
	}
}
