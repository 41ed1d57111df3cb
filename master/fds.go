package master

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// The descriptors a USR2 successor inherits are one named set: each has a
// kind and, where a kind has several, a name (a listen address, a holder's
// pid). The old master adds them as it builds the child's file table; the
// new one takes each by kind and name, and closes what it did not take
// (an address its config dropped, steering maps it no longer wants).

// Kinds of inherited descriptors.
const (
	fdReady      = "ready"       // the socket the new master reports ready on
	fdShared     = "shared"      // the shared region (memfd)
	fdState      = "state"       // the runtime server changes (memfd)
	fdListen     = "listen"      // a listening socket, by address (several per address)
	fdAdmin      = "admin"       // the admin port's socket, by address
	fdSteer      = "steer"       // the steering table (steer.Export)
	fdSteerArray = "steer-array" // a steering socket array, by address
	fdHolder     = "holder"      // a pidfd of a master that may hold counter slots, by pid
	fdTickets    = "tickets"     // the TLS session ticket keys (memfd)
)

// namedFd is one inherited descriptor; Fd is its number in the new master.
type namedFd struct {
	Kind string `json:"kind"`
	Name string `json:"name,omitempty"`
	Fd   int    `json:"fd"`
}

// fdsOut builds a successor's file table (stdin, stdout, stderr first) and
// the names that go with it.
type fdsOut struct {
	files []uintptr
	named []namedFd
}

func newFdsOut() *fdsOut { return &fdsOut{files: []uintptr{0, 1, 2}} }

func (o *fdsOut) add(kind, name string, fd int) {
	o.named = append(o.named, namedFd{Kind: kind, Name: name, Fd: len(o.files)})
	o.files = append(o.files, uintptr(fd))
}

// fdsIn is what a master inherited; each fd it takes is made
// close-on-exec (a worker must not inherit it).
type fdsIn struct {
	fds   []namedFd
	taken map[int]bool
}

func newFdsIn(fds []namedFd) *fdsIn { return &fdsIn{fds: fds, taken: map[int]bool{}} }

// take claims the fd of kind and name; false if there is none.
func (in *fdsIn) take(kind, name string) (int, bool) {
	for _, f := range in.fds {
		if f.Kind == kind && f.Name == name && !in.taken[f.Fd] {
			in.taken[f.Fd] = true
			unix.CloseOnExec(f.Fd)
			return f.Fd, true
		}
	}
	return -1, false
}

// takeAll claims every fd of kind, in the order they were added.
func (in *fdsIn) takeAll(kind string) []namedFd {
	var out []namedFd
	for _, f := range in.fds {
		if f.Kind == kind && !in.taken[f.Fd] {
			in.taken[f.Fd] = true
			unix.CloseOnExec(f.Fd)
			out = append(out, f)
		}
	}
	return out
}

// closeUntaken closes what nobody took.
func (in *fdsIn) closeUntaken() {
	for _, f := range in.fds {
		if !in.taken[f.Fd] {
			unix.Close(f.Fd)
		}
	}
}

func pidName(pid int) string { return strconv.Itoa(pid) }

// memfdWith puts b in a new memfd: how a master hands a successor bytes
// that are not a descriptor of their own (the server state, ticket keys).
func memfdWith(name string, b []byte) (int, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("master: upgrade: memfd: %w", err)
	}
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("master: upgrade: %s: %w", name, err)
		}
		b = b[n:]
	}
	return fd, nil
}

// readMemfd reads a memfd from memfdWith whole and closes it.
func readMemfd(fd int) ([]byte, error) {
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("master: upgrade: %w", err)
	}
	b := make([]byte, st.Size)
	for off := 0; off < len(b); {
		n, err := unix.Pread(fd, b[off:], int64(off))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("master: upgrade: %w", err)
		}
		if n == 0 {
			return nil, fmt.Errorf("master: upgrade: memfd shorter than its size")
		}
		off += n
	}
	return b, nil
}
