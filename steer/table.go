package steer

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxSlots is how many worker slots a Table holds (shared.MaxWorkers).
const MaxSlots = 64

// slotSize is one slot's bytes in the array value: sessions, then live.
const slotSize = 8

// Table is the mmapped value of the steering array: per worker slot, its
// session count (offset 0) and whether it takes connections (offset 4).
// The BPF program reads it; master and workers write it without a syscall.
type Table struct {
	mem []byte
}

// Map maps the steering array behind fd (the master's, or a worker's
// inherited copy).
func Map(fd int) (*Table, error) {
	mem, err := unix.Mmap(fd, 0, unix.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("steer: mmap: %w", err)
	}
	return &Table{mem: mem}, nil
}

func (t *Table) word(slot, off int) *uint32 {
	return (*uint32)(unsafe.Pointer(&t.mem[slot*slotSize+off]))
}

// SetSessions publishes slot's session count.
func (t *Table) SetSessions(slot, n int) {
	atomic.StoreUint32(t.word(slot, 0), uint32(n))
}

// Sessions is slot's published session count.
func (t *Table) Sessions(slot int) int {
	return int(atomic.LoadUint32(t.word(slot, 0)))
}

// SetLive says whether slot takes new connections.
func (t *Table) SetLive(slot int, live bool) {
	v := uint32(0)
	if live {
		v = 1
	}
	atomic.StoreUint32(t.word(slot, 4), v)
}

// Live reports whether slot takes new connections.
func (t *Table) Live(slot int) bool {
	return atomic.LoadUint32(t.word(slot, 4)) != 0
}

// Unmap releases the mapping.
func (t *Table) Unmap() {
	if t.mem != nil {
		unix.Munmap(t.mem)
		t.mem = nil
	}
}
