package master

import (
	"errors"
	"os"

	"g6/conf"
	"g6/pool"
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
	return memfdWith("g6-state", b)
}

// readStateFd reads the overlay the previous master handed down.
func readStateFd(fd int) (*pool.State, error) {
	b, err := readMemfd(fd)
	if err != nil {
		return nil, err
	}
	s, err := pool.ParseState(b)
	if err != nil {
		return nil, errors.Join(errors.New("master: upgrade: inherited server state"), err)
	}
	return &s, nil
}
