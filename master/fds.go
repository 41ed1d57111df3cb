package master

import (
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
