package host

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/mftflow/mftflow/internal/discard"
)

// arenaSize is the address space shared with each plugin process. Pages
// are allocated when first written, so the memory used is the most bytes of
// parts in flight at once; alloc reuses the lowest free space first, and
// pages are kept rather than faulted in again for every part.
const arenaSize = 512 << 20

// arena is memory shared with a plugin process (a memfd mapped by both):
// a part is copied in once and the plugin's sink reads it in place, so file
// data does not pass through gRPC framing and TLS.
type arena struct {
	file *os.File
	mem  []byte

	mu      sync.Mutex
	free    []span // disjoint, by offset
	touched int64  // bytes from the start that parts have used, and so are resident
}

type span struct{ off, n int64 }

func newArena() (*arena, error) {
	fd, err := unix.MemfdCreate("mftflow-plugin", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("shared memory for plugins: %w", err)
	}
	if err := unix.Ftruncate(fd, arenaSize); err != nil {
		_ = unix.Close(fd) // unused, and the error below says why
		return nil, fmt.Errorf("shared memory for plugins: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, arenaSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		_ = unix.Close(fd) // unused, and the error below says why
		return nil, fmt.Errorf("shared memory for plugins: %w", err)
	}
	return &arena{file: os.NewFile(uintptr(fd), "mftflow-plugin-shm"), mem: mem, free: []span{{0, arenaSize}}}, nil
}

// alloc reserves n bytes (rounded up to whole pages) and returns their
// offset; false when there is no room, and the caller sends the part the
// other way.
func (a *arena) alloc(n int64) (int64, bool) {
	n = pages(n)
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, s := range a.free {
		if s.n < n {
			continue
		}
		if s.n == n {
			a.free = slices.Delete(a.free, i, i+1)
		} else {
			a.free[i] = span{s.off + n, s.n - n}
		}
		if end := s.off + n; end > a.touched {
			chargeShared(end - a.touched)
			a.touched = end
		}
		return s.off, true
	}
	return 0, false
}

// release gives back what alloc(n) returned at off.
func (a *arena) release(off, n int64) {
	n = pages(n)
	a.mu.Lock()
	defer a.mu.Unlock()
	i, _ := slices.BinarySearchFunc(a.free, off, func(s span, off int64) int { return int(s.off - off) })
	a.free = slices.Insert(a.free, i, span{off, n})
	// Merge with the neighbours.
	if i+1 < len(a.free) && a.free[i].off+a.free[i].n == a.free[i+1].off {
		a.free[i].n += a.free[i+1].n
		a.free = slices.Delete(a.free, i+1, i+2)
	}
	if i > 0 && a.free[i-1].off+a.free[i-1].n == a.free[i].off {
		a.free[i-1].n += a.free[i].n
		a.free = slices.Delete(a.free, i, i+1)
	}
}

func (a *arena) close() {
	// Scratch space for parts in flight: nothing in it is kept, so
	// neither error loses anything.
	_ = unix.Munmap(a.mem)
	discard.Close(a.file)
	a.mu.Lock()
	chargeShared(-a.touched)
	a.touched = 0
	a.mu.Unlock()
}

// shared is what the arenas hold resident. The Go runtime's soft memory
// limit does not see these pages, yet they count in the process's memory
// like its heap: the limit is lowered by them (down to half of what it was),
// so that the runner as a whole stays within it with plugin sinks too. The
// limit is read when the first arena takes pages and set back when the last
// one closes: a limit set meanwhile by other code is overridden.
var shared struct {
	sync.Mutex
	base  int64 // the limit before any arena held pages
	bytes int64
}

func chargeShared(n int64) {
	shared.Lock()
	defer shared.Unlock()
	if shared.bytes == 0 {
		shared.base = debug.SetMemoryLimit(-1)
	}
	shared.bytes += n
	if shared.base == math.MaxInt64 {
		return // no limit
	}
	debug.SetMemoryLimit(max(shared.base-shared.bytes, shared.base/2))
}

func pages(n int64) int64 {
	const page = 4096
	return (n + page - 1) / page * page
}
