package sdk

import (
	"fmt"
	"os"
	"strconv"

	"github.com/mftflow/mftflow/plugins/internal/wire"
	"golang.org/x/sys/unix"
)

// openShm maps the memory the runner shares with this process, if it
// shares any: upload parts arrive there instead of through gRPC.
func openShm() ([]byte, error) {
	v := os.Getenv(wire.ShmEnv)
	if v == "" {
		return nil, nil
	}
	fd, err := strconv.Atoi(v)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: not a file descriptor", wire.ShmEnv, v)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("shared memory from the runner: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("shared memory from the runner: %w", err)
	}
	return mem, nil
}
