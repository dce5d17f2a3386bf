//go:build !linux

package host

import "os"

// arena is shared memory with a plugin process; only Linux has it, other
// systems send parts through gRPC.
type arena struct {
	file *os.File
	mem  []byte
}

func newArena() (*arena, error)              { return nil, nil }
func (a *arena) alloc(n int64) (int64, bool) { return 0, false }
func (a *arena) release(off, n int64)        {}
func (a *arena) close()                      {}
