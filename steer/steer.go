package steer

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Steerer is the master's side: the steering array and, per listen
// address, the socket array and program attached to its reuseport group.
// Only the master's loop uses it.
type Steerer struct {
	*Table
	state  *ebpf.Map
	groups map[string]*group
}

type group struct {
	fds   []int
	n     int
	socks *ebpf.Map
	prog  *ebpf.Program
}

// ErrNoGroup is Attach's answer for an address whose sockets are fewer
// than the workers: they are not one reuseport group per slot.
var ErrNoGroup = errors.New("steer: fewer sockets than workers; the kernel's hash stays")

// New makes the steering array and maps it; it fails without CAP_BPF (or
// on a kernel without mmapable BPF arrays or SK_REUSEPORT programs).
func New() (*Steerer, error) {
	state, err := ebpf.NewMap(&ebpf.MapSpec{Name: "g6_steer", Type: ebpf.Array, KeySize: 4,
		ValueSize: MaxSlots * slotSize, MaxEntries: 1, Flags: unix.BPF_F_MMAPABLE})
	if err != nil {
		return nil, fmt.Errorf("steer: BPF array: %w", err)
	}
	if err := probe(state); err != nil {
		state.Close()
		return nil, err
	}
	t, err := Map(state.FD())
	if err != nil {
		state.Close()
		return nil, err
	}
	return &Steerer{Table: t, state: state, groups: map[string]*group{}}, nil
}

// probe loads a program once: it is what needs the capabilities (an array
// alone may be allowed without), so their absence shows at start rather
// than at each address.
func probe(state *ebpf.Map) error {
	socks, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.ReusePortSockArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return fmt.Errorf("steer: socket array: %w", err)
	}
	defer socks.Close()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SkReuseport, AttachType: ebpf.AttachSkReuseportSelect,
		Instructions: program(state, socks, 1), License: "GPL"})
	if err != nil {
		return fmt.Errorf("steer: program: %w", err)
	}
	return prog.Close()
}

// Export lists the fds a USR2 successor inherits to Adopt: the steering
// array's, and each address's socket array's by key. A socket can be in one
// socket array only, so the successor must take these over rather than
// make its own while this master's program (attached to the groups) holds
// them.
func (s *Steerer) Export() (state int, arrays map[string]int) {
	arrays = map[string]int{}
	for k, g := range s.groups {
		arrays[k] = g.socks.FD()
	}
	return s.state.FD(), arrays
}

// Adopt takes the steering array and socket arrays a previous master
// exported (fds this process owns from now on, on error too); sockets are
// this master's sockets by key, the same sockets the arrays hold. The next
// Attach of each address loads this master's program over them.
func Adopt(state int, arrays map[string]int, sockets map[string][]int) (*Steerer, error) {
	closeArrays := func() {
		for _, fd := range arrays {
			unix.Close(fd)
		}
	}
	m, err := ebpf.NewMapFromFD(state) // owns state, on error too
	if err != nil {
		closeArrays()
		return nil, fmt.Errorf("steer: inherited array: %w", err)
	}
	t, err := Map(m.FD())
	if err != nil {
		m.Close()
		closeArrays()
		return nil, err
	}
	s := &Steerer{Table: t, state: m, groups: map[string]*group{}}
	for k, fd := range arrays {
		socks, err := ebpf.NewMapFromFD(fd)
		if err != nil || len(sockets[k]) == 0 {
			if err == nil {
				socks.Close()
			}
			continue // that address keeps the previous program until the next Attach fails loudly
		}
		s.groups[k] = &group{fds: slices.Clone(sockets[k]), socks: socks} // n 0: Attach loads a program
	}
	return s, nil
}

// Fd is the steering array's fd, for the workers to inherit and Map.
func (s *Steerer) Fd() int { return s.state.FD() }

// Attach steers the reuseport group of one address (key), whose socket i
// belongs to worker slot i % n. It is a no-op when the group is already
// steered for the same sockets and n.
func (s *Steerer) Attach(key string, fds []int, n int) error {
	if g := s.groups[key]; g != nil && g.n == n && g.prog != nil && slices.Equal(g.fds, fds) {
		return nil
	}
	if len(fds) < n || n > MaxSlots {
		return ErrNoGroup
	}
	old := s.groups[key]
	g := &group{fds: slices.Clone(fds), n: n}
	// A socket can be in one socket array only: the group keeps its array
	// while its sockets stay the same.
	kept := old != nil && slices.Equal(old.fds, fds)
	if kept {
		g.socks = old.socks
	} else {
		if old != nil {
			old.empty()
		}
		var err error
		if g.socks, err = socketArray(key, fds); err != nil {
			return err
		}
	}
	fail := func(err error) error {
		if kept {
			g.socks = nil // still old's
		}
		g.close()
		return err
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "g6_steer", Type: ebpf.SkReuseport,
		AttachType: ebpf.AttachSkReuseportSelect, Instructions: program(s.state, g.socks, n), License: "GPL"})
	if err != nil {
		return fail(fmt.Errorf("steer: %s: program: %w", key, err))
	}
	g.prog = prog
	// The program belongs to the group: set on one socket, it replaces
	// whatever program (an earlier generation's) the group had.
	if err := unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_EBPF, prog.FD()); err != nil {
		return fail(fmt.Errorf("steer: %s: attach: %w", key, err))
	}
	if old != nil {
		if kept {
			old.socks = nil
		}
		old.close()
	}
	s.groups[key] = g
	return nil
}

// Forget drops what steers key's group (its sockets are being closed).
func (s *Steerer) Forget(key string) {
	if g := s.groups[key]; g != nil {
		g.close()
		delete(s.groups, key)
	}
}

// Close detaches every group it steers and releases the maps.
func (s *Steerer) Close() {
	for k, g := range s.groups {
		Detach(g.fds[0])
		g.close()
		delete(s.groups, k)
	}
	s.Unmap()
	s.state.Close()
}

// socketArray puts socket i of fds at index i of a new socket array.
func socketArray(key string, fds []int) (*ebpf.Map, error) {
	socks, err := ebpf.NewMap(&ebpf.MapSpec{Name: "g6_socks", Type: ebpf.ReusePortSockArray, KeySize: 4,
		ValueSize: 8, MaxEntries: uint32(len(fds))})
	if err != nil {
		return nil, fmt.Errorf("steer: %s: socket array: %w", key, err)
	}
	for i, fd := range fds {
		if err := socks.Update(uint32(i), uint64(fd), ebpf.UpdateAny); err != nil {
			socks.Close()
			return nil, fmt.Errorf("steer: %s: socket %d: %w", key, i, err)
		}
	}
	return socks, nil
}

// empty takes the group's sockets out of its array, so another array may
// take them while an attached program still holds this one.
func (g *group) empty() {
	if g.socks == nil {
		return
	}
	for i := range g.fds {
		g.socks.Delete(uint32(i))
	}
}

func (g *group) close() {
	if g.prog != nil {
		g.prog.Close()
	}
	if g.socks != nil {
		g.socks.Close()
	}
}

// Detach leaves fd's reuseport group to the kernel's hash (a program an
// earlier master attached included); a group without one is fine.
func Detach(fd int) {
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_REUSEPORT_BPF, 0)
}
