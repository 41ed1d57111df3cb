package shared

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrLayout is returned by Open for a region this build cannot read.
var ErrLayout = errors.New("shared: region layout mismatch")

// Region is a mapping of the shared memory.
type Region struct {
	fd  int
	mem []byte
	hdr *header
}

// Sizes are the slot capacities of a region.
type Sizes struct {
	Rules, Servers, Clients, IPs int
}

// Create makes a new region with the given capacities.
// The returned fd is close-on-exec; pass it to workers explicitly.
func Create(sz Sizes) (*Region, error) {
	fd, err := unix.MemfdCreate("g6-shared", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("shared: memfd_create: %w", err)
	}
	size := regionSize(sz.Rules, sz.Servers, sz.Clients, sz.IPs)
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("shared: ftruncate: %w", err)
	}
	r, err := mapRegion(fd, size)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	h := r.hdr
	copy(h.Magic[:], magic)
	h.Version = Version
	h.HeaderSize = headerSize
	h.TotalSize = uint64(size)
	h.NRules, h.NServers = uint32(sz.Rules), uint32(sz.Servers)
	h.NClients, h.NIPs = uint32(sz.Clients), uint32(sz.IPs)
	h.RuleSize, h.ServerSize = uint32(ruleSize), uint32(serverSize)
	h.MaxWorkers = MaxWorkers
	return r, nil
}

// Open maps a region created by Create (in this or another process) and
// checks that its header matches this build's layout.
func Open(fd int) (*Region, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("shared: fstat: %w", err)
	}
	if st.Size < headerSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrLayout, st.Size)
	}
	r, err := mapRegion(fd, int(st.Size))
	if err != nil {
		return nil, err
	}
	h := r.hdr
	switch {
	case string(h.Magic[:]) != magic:
		err = fmt.Errorf("%w: bad magic", ErrLayout)
	case h.Version != Version:
		err = fmt.Errorf("%w: version %d, want %d", ErrLayout, h.Version, Version)
	case h.RuleSize != uint32(ruleSize) || h.ServerSize != uint32(serverSize) || h.MaxWorkers != MaxWorkers:
		err = fmt.Errorf("%w: slot sizes differ", ErrLayout)
	case h.TotalSize != uint64(st.Size) || int(h.TotalSize) != regionSize(int(h.NRules), int(h.NServers), int(h.NClients), int(h.NIPs)):
		err = fmt.Errorf("%w: size %d does not match header", ErrLayout, st.Size)
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func mapRegion(fd, size int) (*Region, error) {
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("shared: mmap: %w", err)
	}
	return &Region{fd: fd, mem: mem, hdr: (*header)(unsafe.Pointer(&mem[0]))}, nil
}

// Fd is the memfd, for handing to a worker.
func (r *Region) Fd() int { return r.fd }

// Close unmaps the region and closes its fd.
func (r *Region) Close() error {
	err := unix.Munmap(r.mem)
	unix.Close(r.fd)
	return err
}

// NumRules and NumServers are the slot capacities.
func (r *Region) NumRules() int   { return int(r.hdr.NRules) }
func (r *Region) NumServers() int { return int(r.hdr.NServers) }

// Rule returns rule slot i.
func (r *Region) Rule(i int) *RuleSlot {
	off := headerSize + i*ruleSize
	return (*RuleSlot)(unsafe.Pointer(&r.mem[off]))
}

// Server returns server slot i.
func (r *Region) Server(i int) *ServerSlot {
	off := headerSize + int(r.hdr.NRules)*ruleSize + i*serverSize
	return (*ServerSlot)(unsafe.Pointer(&r.mem[off]))
}

// NumClients is the client slot capacity.
func (r *Region) NumClients() int { return int(r.hdr.NClients) }

// Client returns client slot i. Its plain fields are guarded by the lock.
func (r *Region) Client(i int) *ClientSlot {
	off := headerSize + int(r.hdr.NRules)*ruleSize + int(r.hdr.NServers)*serverSize + i*clientSize
	return (*ClientSlot)(unsafe.Pointer(&r.mem[off]))
}

func (r *Region) ip(i int) *ipEntry {
	off := headerSize + int(r.hdr.NRules)*ruleSize + int(r.hdr.NServers)*serverSize +
		int(r.hdr.NClients)*clientSize + i*ipSize
	return (*ipEntry)(unsafe.Pointer(&r.mem[off]))
}
