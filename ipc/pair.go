package ipc

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Socketpair returns a connected pair of close-on-exec stream sockets: one
// end for the master, one to hand to a worker.
func Socketpair() (master, worker int, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, fmt.Errorf("ipc: socketpair: %w", err)
	}
	return fds[0], fds[1], nil
}
