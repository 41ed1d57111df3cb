package master

import (
	"errors"
	"fmt"
	"os"

	"g6/conf"
	"g6/pool"

	"golang.org/x/sys/unix"
)

// startState is the overlay a new master starts from: its predecessor's
// (USR2), else the state file's. A state file that cannot be read is
// logged as an error and moved aside (FILE.bad), and g6 starts from the
// config alone: a balancer that will not start is worse than one that
// has lost its runtime changes, and the operator still has the file.
func (m *Master) startState(cfg *conf.Config, inh *inheritance) pool.State {
	if inh != nil && inh.state != nil {
		return *inh.state
	}
	path := cfg.Global.StateFile
	if path == "" {
		return pool.State{}
	}
	st, err := pool.LoadState(path)
	if err != nil {
		bad := path + ".bad"
		if rerr := os.Rename(path, bad); rerr != nil {
			bad = path
		}
		m.log.Error("state file unusable; starting from the config alone", "err", err, "kept_as", bad)
		return pool.State{}
	}
	if n := len(st.Overrides); n > 0 {
		m.log.Info("runtime server changes restored", "state_file", path, "servers", n)
	}
	return st
}

// stateFd writes the overlay to a memfd for the next master (USR2).
func (m *Master) stateFd() (int, error) {
	b, err := pool.EncodeState(m.pool.State())
	if err != nil {
		return -1, err
	}
	fd, err := unix.MemfdCreate("g6-state", unix.MFD_CLOEXEC)
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
			return -1, fmt.Errorf("master: upgrade: state: %w", err)
		}
		b = b[n:]
	}
	return fd, nil
}

// readStateFd reads the overlay the previous master handed down.
func readStateFd(fd int) (*pool.State, error) {
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	b := make([]byte, st.Size)
	if _, err := unix.Pread(fd, b, 0); err != nil {
		return nil, err
	}
	s, err := pool.ParseState(b)
	if err != nil {
		return nil, errors.Join(errors.New("master: upgrade: inherited server state"), err)
	}
	return &s, nil
}
