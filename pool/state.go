package pool

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"g6/conf"
)

// State is the overlay of runtime changes, as the state file holds it.
type State struct {
	Version   int        `json:"version"`
	Overrides []Override `json:"servers"`
	Answers   []Answer   `json:"resolved,omitempty"` // what each name entry last yielded
}

// stateVersion is the state file's format.
const stateVersion = 1

// Override is every runtime change to one server of one rule.
type Override struct {
	Rule    string `json:"rule"`
	Address string `json:"address"` // conf.AddrKey form
	// Base is the server's config entry when the change was made ("" =
	// the config did not list it): the change is dropped once the config
	// entry differs.
	Base     string `json:"base,omitempty"`
	Added    bool   `json:"added,omitempty"`
	Backup   bool   `json:"backup,omitempty"` // of an added server
	Removed  bool   `json:"removed,omitempty"`
	Weight   *int   `json:"weight,omitempty"`
	MaxConns *int64 `json:"max_connections,omitempty"`
	// Disabled and Draining are wall-clock deadlines in Unix ns; Forever
	// for none; 0 = not disabled / not draining.
	Disabled int64  `json:"disabled_until,omitempty"`
	Draining int64  `json:"draining_until,omitempty"`
	By       string `json:"by,omitempty"` // the fleet node that made the last change
}

// Forever as a wall-clock deadline.
const Forever = int64(1<<63 - 1)

// Empty reports whether o changes nothing (the fleet deletes such a key).
func (o *Override) Empty() bool {
	return !o.Added && !o.Removed && o.Weight == nil && o.MaxConns == nil && o.Disabled == 0 && o.Draining == 0
}

// find returns the override of (rule, addr), or nil.
func (s *State) find(rule, addr string) *Override {
	for i := range s.Overrides {
		if o := &s.Overrides[i]; o.Rule == rule && o.Address == addr {
			return o
		}
	}
	return nil
}

// get returns the override of (rule, addr), making one with base if none.
func (s *State) get(rule, addr, base string) *Override {
	if o := s.find(rule, addr); o != nil {
		return o
	}
	s.Overrides = append(s.Overrides, Override{Rule: rule, Address: addr, Base: base})
	return &s.Overrides[len(s.Overrides)-1]
}

func (s *State) prune() {
	s.Overrides = slices.DeleteFunc(s.Overrides, func(o Override) bool { return o.Empty() })
}

func (s State) clone() State {
	c := State{Version: s.Version, Overrides: slices.Clone(s.Overrides), Answers: slices.Clone(s.Answers)}
	for i := range c.Answers {
		c.Answers[i].Servers = slices.Clone(c.Answers[i].Servers)
	}
	for i := range c.Overrides {
		o := &c.Overrides[i]
		if o.Weight != nil {
			w := *o.Weight
			o.Weight = &w
		}
		if o.MaxConns != nil {
			n := *o.MaxConns
			o.MaxConns = &n
		}
	}
	return c
}

// entryText is a config entry's identity for Base: every setting that a
// runtime change can override or that defines the server.
func entryText(s conf.Server) string {
	return fmt.Sprintf("weight=%d max_connections=%d backup=%t", s.Weight, s.MaxConnections, s.Backup)
}

// ParseState reads a state file's bytes.
func ParseState(b []byte) (State, error) {
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, err
	}
	if s.Version != stateVersion {
		return State{}, fmt.Errorf("version %d, want %d", s.Version, stateVersion)
	}
	for i := range s.Overrides {
		if err := s.Overrides[i].check(); err != nil {
			return State{}, fmt.Errorf("server %d: %w", i+1, err)
		}
	}
	for i := range s.Answers {
		if err := s.Answers[i].check(); err != nil {
			return State{}, fmt.Errorf("resolved %d: %w", i+1, err)
		}
	}
	return s, nil
}

// ParseOverride reads one override (a fleet key's value).
func ParseOverride(b []byte) (Override, error) {
	var o Override
	if err := json.Unmarshal(b, &o); err != nil {
		return Override{}, err
	}
	return o, o.check()
}

// check validates o and writes its address in conf.AddrKey form.
func (o *Override) check() error {
	ap, err := conf.ParseHostPort(o.Address)
	switch {
	case o.Rule == "":
		return errors.New("no rule")
	case err != nil:
		return err
	case o.Weight != nil && (*o.Weight < 0 || *o.Weight > conf.MaxWeight):
		return fmt.Errorf("weight %d is not 0-%d", *o.Weight, conf.MaxWeight)
	case o.MaxConns != nil && *o.MaxConns < 0:
		return errors.New("negative max_connections")
	}
	o.Address = ap.String()
	return nil
}

// LoadState reads the state file at path; a missing file is an empty
// state. Errors name the file.
func LoadState(path string) (State, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return State{Version: stateVersion}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("pool: state file: %w", err)
	}
	s, err := ParseState(b)
	if err != nil {
		return State{}, fmt.Errorf("pool: state file %s: %w", path, err)
	}
	return s, nil
}

// EncodeState is the state file's bytes for s.
func EncodeState(s State) ([]byte, error) {
	s.Version = stateVersion
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("pool: state: %w", err)
	}
	return append(b, '\n'), nil
}

// SaveState writes s to path atomically: a temp file in the same
// directory, fsynced, renamed over path, and the directory fsynced.
func SaveState(path string, s State) error {
	b, err := EncodeState(s)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("pool: state file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pool: state file %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// wallToMono converts a wall-clock deadline to the region's clock.
func wallToMono(wall, now int64, at time.Time) int64 {
	if wall == Forever {
		return Forever
	}
	return now + (wall - at.UnixNano())
}
