package conf

import (
	"fmt"
	"sort"
	"time"
)

// Keepalive is TCP keepalive on one side of a session: after Idle without
// traffic the kernel probes every Interval and gives up after Count
// unanswered probes. The zero value is off, the default: a probe wakes idle
// peers and radios, and most sessions end long before it would matter.
type Keepalive struct {
	Idle     Duration `json:",omitempty"`
	Interval Duration `json:",omitempty"`
	Count    int      `json:",omitempty"`
}

// On reports whether keepalive is set.
func (k Keepalive) On() bool { return k.Idle > 0 }

// Keepalive defaults for keys a written keepalive table leaves out, and
// the kernel's bounds (TCP_KEEPIDLE and TCP_KEEPINTVL in seconds,
// TCP_KEEPCNT).
const (
	DefaultKeepaliveIdle     = Duration(60 * time.Second)
	DefaultKeepaliveInterval = Duration(10 * time.Second)
	DefaultKeepaliveCount    = 5
	maxKeepaliveSeconds      = 32767
	maxKeepaliveCount        = 127
)

// fileKeepalive is `keepalive = { idle = "60s", interval = "10s", count = 5 }`.
type fileKeepalive struct {
	Idle     *Duration `toml:"idle"`
	Interval *Duration `toml:"interval"`
	Count    *Count    `toml:"count"`
}

// decodeKeepalive reads a keepalive table inside an entry (the decoder
// does not see entries' tables).
func decodeKeepalive(val any) (*fileKeepalive, error) {
	m, ok := val.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("keepalive must be a table { idle = \"60s\", interval = \"10s\", count = 5 }, not %T", val)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	k := &fileKeepalive{}
	for _, key := range keys {
		var err error
		switch key {
		case "idle":
			k.Idle = new(Duration)
			err = k.Idle.UnmarshalTOML(m[key])
		case "interval":
			k.Interval = new(Duration)
			err = k.Interval.UnmarshalTOML(m[key])
		case "count":
			k.Count = new(Count)
			err = k.Count.UnmarshalTOML(m[key])
		default:
			err = fmt.Errorf("unknown key (allowed: count, idle, interval)")
		}
		if err != nil {
			return nil, fmt.Errorf("keepalive.%s: %w", key, err)
		}
	}
	return k, nil
}

// resolve fills a written table's missing keys; nil is off, and so is
// idle = 0 (it cancels an inherited keepalive).
func (k *fileKeepalive) resolve() Keepalive {
	if k == nil || k.Idle != nil && *k.Idle == 0 {
		return Keepalive{}
	}
	return Keepalive{Idle: deref(k.Idle, DefaultKeepaliveIdle), Interval: deref(k.Interval, DefaultKeepaliveInterval),
		Count: int(deref(k.Count, Count(DefaultKeepaliveCount)))}
}

// check checks a resolved keepalive against the kernel's bounds.
func (k Keepalive) check() error {
	if k == (Keepalive{}) {
		return nil
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"idle", k.Idle}, {"interval", k.Interval}} {
		if d.v < Duration(time.Second) || d.v > Duration(maxKeepaliveSeconds*time.Second) || d.v%Duration(time.Second) != 0 {
			return fmt.Errorf("keepalive: %s must be whole seconds from 1s to %ds, not %s", d.name, maxKeepaliveSeconds, time.Duration(d.v))
		}
	}
	if k.Count < 1 || k.Count > maxKeepaliveCount {
		return fmt.Errorf("keepalive: count must be 1-%d, not %d", maxKeepaliveCount, k.Count)
	}
	return nil
}
