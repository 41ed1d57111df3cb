package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// NodeInfo is what each node keeps under <prefix>/nodes/<node>, bound to a
// lease so that a node that stops drops out when the lease expires.
type NodeInfo struct {
	Node       string  `json:"node"`
	Version    string  `json:"version"`
	Started    int64   `json:"started_unix"`
	ConfigHash string  `json:"config_hash"`
	Workers    int     `json:"workers"`
	Sessions   int64   `json:"sessions"`
	Rate       float64 `json:"connections_per_second"`
	Error      string  `json:"error,omitempty"` // the last config this node refused, and why
	// Down lists the servers ("RULE ADDRESS") this node cannot use now
	// (its own checks, heartbeats, moratoriums): the fleet view of health.
	Down []string `json:"down,omitempty"`
	// Filled in by Nodes, not stored:
	Self          bool `json:"self"`
	ConfigDiffers bool `json:"config_differs"`
}

// leaseTTL is how long a silent node stays listed; registerEvery how often a
// live one rewrites its key.
const (
	leaseTTL      = 10
	registerEvery = 2 * time.Second
)

func (s *Store) nodeKey(n string) string { return s.prefix + "/nodes/" + n }

// registerLoop keeps this node's key (and its lease) alive with fresh
// numbers until the store closes.
func registerLoop(s *Store) {
	defer close(s.regDone)
	var lease clientv3.LeaseID
	for {
		if lease == 0 {
			ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
			resp, err := s.cli.Grant(ctx, leaseTTL)
			cancel()
			if err == nil {
				lease = resp.ID
			}
		}
		if lease != 0 {
			info := s.info()
			info.Node = s.node
			b, _ := json.Marshal(info)
			ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
			_, err := s.cli.Put(ctx, s.nodeKey(s.node), string(b), clientv3.WithLease(lease))
			if err == nil {
				_, err = s.cli.KeepAliveOnce(ctx, lease)
			}
			cancel()
			if err != nil {
				lease = 0 // expired or unreachable: a new lease next time
			}
		}
		select {
		case <-s.ctx.Done():
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if lease != 0 {
				s.cli.Revoke(ctx, lease) // leave the fleet at once on a clean stop
			}
			cancel()
			return
		case <-time.After(registerEvery):
		}
	}
}

// Nodes lists the fleet's live nodes, marking this one and those whose
// config hash differs from the one most nodes have.
func (s *Store) Nodes() ([]NodeInfo, error) {
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix+"/nodes/", clientv3.WithPrefix())
	if err != nil {
		return nil, ErrUnavailable
	}
	var out []NodeInfo
	count := map[string]int{}
	for _, kv := range resp.Kvs {
		var n NodeInfo
		if json.Unmarshal(kv.Value, &n) != nil {
			continue
		}
		n.Self = n.Node == s.node
		count[n.ConfigHash]++
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no node is registered yet")
	}
	major, most := "", 0
	for h, c := range count {
		if c > most || c == most && h < major {
			major, most = h, c
		}
	}
	for i := range out {
		out[i].ConfigDiffers = out[i].ConfigHash != major
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}
