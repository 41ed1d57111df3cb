package accel

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Window is how many redirected bytes may wait for a peer beyond what it
// has taken when the budget was last raised.
const Window = 256 << 10

// linkSize is a Link's bytes in the array.
const linkSize = 32

// Pairs is one worker's sockmap, program and links. Only the worker's loop
// uses it; the program reads and writes the links concurrently (atomics).
type Pairs struct {
	socks, index, links *ebpf.Map
	prog                *ebpf.Program
	mem                 []byte
	free                []uint32
	// Users counts the sessions paired in these maps; a worker closes maps
	// another worker handed it when their last session ends.
	Users int
	id    ebpf.MapID
}

// ErrFull means every slot is paired.
var ErrFull = errors.New("accel: every slot is in use")

// New makes the maps for capacity sockets (two per session) and attaches
// the verdict program. It needs CAP_BPF and CAP_NET_ADMIN.
func New(capacity int) (*Pairs, error) {
	p := &Pairs{}
	if err := p.make(capacity); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Pairs) make(capacity int) (err error) {
	n := uint32(capacity)
	if p.socks, err = ebpf.NewMap(&ebpf.MapSpec{Name: "g6_pairs", Type: ebpf.SockMap, KeySize: 4, ValueSize: 8, MaxEntries: n}); err != nil {
		return fmt.Errorf("accel: sockmap: %w", err)
	}
	if p.index, err = ebpf.NewMap(&ebpf.MapSpec{Name: "g6_cookies", Type: ebpf.Hash, KeySize: 8, ValueSize: 4, MaxEntries: n,
		Flags: unix.BPF_F_NO_PREALLOC}); err != nil {
		return fmt.Errorf("accel: cookie index: %w", err)
	}
	if p.links, err = ebpf.NewMap(&ebpf.MapSpec{Name: "g6_links", Type: ebpf.Array, KeySize: 4, ValueSize: linkSize,
		MaxEntries: n, Flags: unix.BPF_F_MMAPABLE}); err != nil {
		return fmt.Errorf("accel: links: %w", err)
	}
	if p.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "g6_forward", Type: ebpf.SkSKB, AttachType: ebpf.AttachSkSKBVerdict,
		Instructions: program(p.index, p.links, p.socks), License: "GPL"}); err != nil {
		return fmt.Errorf("accel: program: %w", err)
	}
	if err = link.RawAttachProgram(link.RawAttachProgramOptions{Target: p.socks.FD(), Program: p.prog,
		Attach: ebpf.AttachSkSKBVerdict}); err != nil {
		return fmt.Errorf("accel: attach: %w", err)
	}
	size := (capacity*linkSize + unix.Getpagesize() - 1) &^ (unix.Getpagesize() - 1)
	if p.mem, err = unix.Mmap(p.links.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		return fmt.Errorf("accel: mmap links: %w", err)
	}
	if info, err := p.links.Info(); err == nil {
		p.id, _ = info.ID()
	}
	for i := n; i > 0; i-- {
		p.free = append(p.free, i-1)
	}
	return nil
}

// Open takes the maps another worker made (sockmap, cookie index, links,
// as Fds lists them) for the paired sessions it handed over; they get no
// new pairs. It owns the fds from then on, on error too.
func Open(fds [3]int) (*Pairs, error) {
	p := &Pairs{}
	ms := []**ebpf.Map{&p.socks, &p.index, &p.links}
	var err error
	for i, fd := range fds {
		if err != nil {
			unix.Close(fd) // never given to the library
			continue
		}
		*ms[i], err = ebpf.NewMapFromFD(fd) // owns fd, on error too
	}
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("accel: handed maps: %w", err)
	}
	info, err := p.links.Info()
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("accel: handed links: %w", err)
	}
	p.id, _ = info.ID()
	size := (int(info.MaxEntries)*linkSize + unix.Getpagesize() - 1) &^ (unix.Getpagesize() - 1)
	if p.mem, err = unix.Mmap(p.links.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		p.Close()
		return nil, fmt.Errorf("accel: mmap handed links: %w", err)
	}
	return p, nil
}

// Same reports whether p and q are the same maps (Open of fds another
// worker sent may give maps this worker has already).
func (p *Pairs) Same(q *Pairs) bool { return p.id != 0 && p.id == q.id }

// Fds are the maps' fds in the order Open takes them.
func (p *Pairs) Fds() [3]int { return [3]int{p.socks.FD(), p.index.FD(), p.links.FD()} }

// Available reports whether this process may pair sockets (the master
// asks once, for accel = "auto").
func Available() error {
	p, err := New(2)
	if err != nil {
		return err
	}
	p.Close()
	return nil
}

// Close releases everything (sockets still paired are left by the kernel
// as they close).
func (p *Pairs) Close() {
	if p.mem != nil {
		unix.Munmap(p.mem)
	}
	if p.prog != nil {
		p.prog.Close()
	}
	for _, m := range []*ebpf.Map{p.socks, p.index, p.links} {
		if m != nil {
			m.Close()
		}
	}
	*p = Pairs{}
}

// Closed reports whether Close was called.
func (p *Pairs) Closed() bool { return p.links == nil }

// Pair is one paired session: its sockets' slots and cookies.
type Pair struct {
	Slot   [2]uint32
	Cookie [2]uint64
}

// Pair puts sockets a and b in the map, each redirecting to the other,
// a's bytes within budget[0] and b's within budget[1]. b goes in first:
// bytes that reach the first one before the second is in cannot be
// redirected and spill, while bytes that reach the second before it is in
// wait in its receive queue for the kick; so a should be the side expected
// to speak next (the client, once it has its answer). On an error nothing
// is paired, unless spilled: then b is in the map and both are marked
// spilled (their bytes come to the worker as without pairing, but b must
// stay in the map while it lives).
func (p *Pairs) Pair(a, b int, budget [2]uint64) (pr Pair, spilled bool, err error) {
	if len(p.free) < 2 {
		return pr, false, ErrFull
	}
	fds := [2]int{a, b}
	for i, fd := range fds {
		if pr.Cookie[i], err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE); err != nil {
			return pr, false, fmt.Errorf("accel: cookie: %w", err)
		}
	}
	n := len(p.free)
	pr.Slot = [2]uint32{p.free[n-1], p.free[n-2]}
	p.free = p.free[:n-2]
	for i := range fds {
		l := p.link(pr.Slot[i])
		atomic.StoreUint32(&l.peer, pr.Slot[1-i])
		atomic.StoreUint32(&l.spilled, 0)
		atomic.StoreUint64(&l.moved, 0)
		atomic.StoreUint64(&l.budget, budget[i])
		atomic.StoreUint64(&l.last, 0)
	}
	if err = p.index.Update(pr.Cookie[0], pr.Slot[0], ebpf.UpdateAny); err == nil {
		err = p.index.Update(pr.Cookie[1], pr.Slot[1], ebpf.UpdateAny)
	}
	if err == nil {
		err = p.socks.Update(pr.Slot[1], uint64(b), ebpf.UpdateAny)
	}
	if err != nil {
		p.Unpair(pr)
		p.Free(pr)
		return pr, false, fmt.Errorf("accel: pair: %w", err)
	}
	if err = p.socks.Update(pr.Slot[0], uint64(a), ebpf.UpdateAny); err != nil {
		// a may have gone (a FIN made it CLOSE_WAIT, which the map
		// refuses); b's bytes, if any came, spilled already.
		p.Spill(pr.Slot[0])
		p.Spill(pr.Slot[1])
		return pr, true, fmt.Errorf("accel: pair: %w", err)
	}
	// Bytes that arrived before a socket entered the map wait in its
	// receive queue until more come: setting SO_RCVLOWAT (to its default)
	// runs the verdict over them now.
	for _, fd := range fds {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 1)
	}
	return pr, false, nil
}

// Unpair forgets the pair's cookies. The sockets leave the map when they
// close; their slots are free again only after that (Free).
func (p *Pairs) Unpair(pr Pair) {
	p.index.Delete(pr.Cookie[0])
	p.index.Delete(pr.Cookie[1])
}

// Free returns the pair's slots, once its sockets are closed.
func (p *Pairs) Free(pr Pair) {
	p.free = append(p.free, pr.Slot[0], pr.Slot[1])
}

// linkMem is the layout of one slot's Link in the mmapped links array,
// as the program reads and writes it.
type linkMem struct {
	peer, spilled uint32
	moved, budget uint64
	last          uint64
	_             uint64
}

func (p *Pairs) link(slot uint32) *linkMem {
	return (*linkMem)(unsafe.Pointer(&p.mem[int(slot)*linkSize]))
}

// Moved is how many bytes the kernel has redirected from slot's socket.
func (p *Pairs) Moved(slot uint32) int64 { return int64(atomic.LoadUint64(&p.link(slot).moved)) }

// Last is when the kernel last redirected bytes from slot's socket
// (CLOCK_MONOTONIC ns), 0 = never.
func (p *Pairs) Last(slot uint32) int64 { return int64(atomic.LoadUint64(&p.link(slot).last)) }

// Spilled reports whether slot's bytes now go to the worker.
func (p *Pairs) Spilled(slot uint32) bool { return atomic.LoadUint32(&p.link(slot).spilled) != 0 }

// Spill sends slot's bytes to the worker from now on.
func (p *Pairs) Spill(slot uint32) { atomic.StoreUint32(&p.link(slot).spilled, 1) }

// Budget is slot's budget.
func (p *Pairs) Budget(slot uint32) uint64 { return atomic.LoadUint64(&p.link(slot).budget) }

// SetBudget lets the kernel redirect slot's bytes while Moved stays at most
// b.
func (p *Pairs) SetBudget(slot uint32, b uint64) { atomic.StoreUint64(&p.link(slot).budget, b) }

// Counts are a socket's data bytes as TCP_INFO tells them.
type Counts struct {
	Written  int64 // entered the socket to be sent: sent once, or waiting
	Received int64 // arrived, in order (the FIN not counted)
}

// Count reads fd's Counts with one getsockopt.
func Count(fd int) (Counts, error) {
	ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return Counts{}, fmt.Errorf("accel: TCP_INFO: %w", err)
	}
	c := Counts{Written: int64(ti.Bytes_sent - ti.Bytes_retrans + uint64(ti.Notsent_bytes)), Received: int64(ti.Bytes_received)}
	// bytes_received counts the FIN's sequence number once it came.
	switch ti.State {
	case tcpTimeWait, tcpClose, tcpCloseWait, tcpLastAck, tcpClosing:
		c.Received--
	}
	return c, nil
}

// TCP states (include/net/tcp_states.h) in which the peer's FIN came.
const (
	tcpTimeWait  = 6
	tcpClose     = 7
	tcpCloseWait = 8
	tcpLastAck   = 9
	tcpClosing   = 11
)

// Written is Count's Written alone.
func Written(fd int) (int64, error) {
	c, err := Count(fd)
	return c.Written, err
}
