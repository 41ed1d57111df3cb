package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"g6/conf"
	"g6/pool"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrUnavailable is the admin's answer to a fleet change while etcd
// cannot be reached.
var ErrUnavailable = errors.New("cluster store unavailable")

// opTimeout bounds one write or read of the store.
const opTimeout = 2 * time.Second

// Store is a node's link to the fleet's etcd.
type Store struct {
	cli    *clientv3.Client
	prefix string
	node   string
	table  *pool.Table
	log    *slog.Logger

	mu   sync.Mutex
	revs map[string]int64 // key → ModRevision last applied (0: absent)
	up   bool

	info func() NodeInfo // this node's numbers, for the registry

	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	regDone chan struct{}
}

// Open makes the etcd client (it connects in the background) and starts
// syncing the table with the fleet and registering this node (info gives
// its numbers).
func Open(c *conf.Cluster, table *pool.Table, info func() NodeInfo, log *slog.Logger) (*Store, error) {
	cfg := clientv3.Config{Endpoints: c.Etcd, DialTimeout: c.Timeout.D(), Username: c.Username, Password: c.Password,
		Logger: nil, DialKeepAliveTime: 5 * time.Second, DialKeepAliveTimeout: 2 * time.Second}
	if c.CAFile != "" || c.CertFile != "" {
		tc, err := tlsConfig(c)
		if err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("fleet: etcd %v: %w", c.Etcd, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{cli: cli, prefix: c.Prefix, node: c.Node, table: table, log: log.With("cluster", c.Prefix),
		revs: map[string]int64{}, info: info, ctx: ctx, cancel: cancel, done: make(chan struct{}), regDone: make(chan struct{})}
	table.SetSink(s.write, c.Node)
	go syncLoop(s)
	go registerLoop(s)
	return s, nil
}

// Close stops syncing and closes the client.
func (s *Store) Close() {
	s.table.SetSink(nil, "")
	s.cancel()
	<-s.done
	<-s.regDone
	s.cli.Close()
}

func (s *Store) serversPrefix() string { return s.prefix + "/servers/" }

func (s *Store) key(o pool.Override) string {
	return s.serversPrefix() + url.PathEscape(o.Rule) + "/" + o.Address
}

// write puts (or deletes) the overrides in one transaction, each guarded by
// the revision this node last saw of its key.
func (s *Store) write(list []pool.Override) error {
	s.mu.Lock()
	up := s.up
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	for _, o := range list {
		k := s.key(o)
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", s.revs[k]))
		if o.Empty() {
			ops = append(ops, clientv3.OpDelete(k))
			continue
		}
		b, err := json.Marshal(o)
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("fleet: %w", err)
		}
		ops = append(ops, clientv3.OpPut(k, string(b)))
	}
	s.mu.Unlock()
	if !up {
		return ErrUnavailable
	}
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	defer cancel()
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		s.log.Warn("fleet write failed", "err", err)
		return ErrUnavailable
	}
	if !resp.Succeeded {
		return errors.New("cluster store: the server was changed on another node meanwhile; look again and retry")
	}
	s.mu.Lock()
	for _, o := range list {
		s.revs[s.key(o)] = resp.Header.Revision
	}
	s.mu.Unlock()
	return nil
}

// syncLoop keeps the table in step with the store: read everything, watch
// from there, and start over (with backoff) whenever the watch breaks.
func syncLoop(s *Store) {
	defer close(s.done)
	backoff := 100 * time.Millisecond
	for s.ctx.Err() == nil {
		rev, err := s.resync()
		if err == nil {
			s.setUp(true, nil)
			backoff = 100 * time.Millisecond
			err = s.watch(rev)
		}
		if s.ctx.Err() != nil {
			return
		}
		s.setUp(false, err)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// setUp records reachability and logs each change of it once.
func (s *Store) setUp(up bool, err error) {
	s.mu.Lock()
	was := s.up
	s.up = up
	s.mu.Unlock()
	switch {
	case up && !was:
		s.log.Info("cluster store reachable; fleet state in sync")
	case !up && was:
		s.log.Error("cluster store unreachable; serving with the last known fleet state, fleet changes refused", "err", err)
	}
}

// resync reads every server key and makes it the table's overlay.
func (s *Store) resync() (int64, error) {
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.serversPrefix(), clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	revs := map[string]int64{}
	var list []pool.Override
	for _, kv := range resp.Kvs {
		o, err := decode(kv.Value)
		if err != nil {
			s.log.Warn("fleet key ignored", "key", string(kv.Key), "err", err)
			continue
		}
		revs[string(kv.Key)] = kv.ModRevision
		list = append(list, o)
	}
	if err := s.table.ApplyFleet(list, true); err != nil {
		s.log.Error("fleet state not applied", "err", err)
	}
	s.mu.Lock()
	s.revs = revs
	s.mu.Unlock()
	return resp.Header.Revision, nil
}

// probeEvery is how often a watching node checks that etcd answers: the
// client keeps a watch open across reconnects, so a lost store shows only
// in a request that fails.
const probeEvery = time.Second

// watch applies changes after rev until the watch ends or a probe fails.
func (s *Store) watch(rev int64) error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
	defer cancel()
	probeErr := make(chan error, 1)
	go probe(s, ctx, cancel, probeErr)
	wc := s.cli.Watch(ctx, s.serversPrefix(), clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for resp := range wc {
		if err := resp.Err(); err != nil {
			return err
		}
		var list []pool.Override
		s.mu.Lock()
		for _, ev := range resp.Events {
			k := string(ev.Kv.Key)
			if ev.Kv.ModRevision < s.revs[k] {
				continue
			}
			o, err := overrideOf(k, s.serversPrefix(), ev)
			if err != nil {
				s.log.Warn("fleet key ignored", "key", k, "err", err)
				continue
			}
			s.revs[k] = ev.Kv.ModRevision
			if ev.Type == clientv3.EventTypeDelete {
				delete(s.revs, k)
			}
			list = append(list, o)
		}
		s.mu.Unlock()
		if len(list) > 0 {
			if err := s.table.ApplyFleet(list, false); err != nil {
				s.log.Error("fleet change not applied", "err", err)
			}
		}
	}
	if s.ctx.Err() != nil {
		return s.ctx.Err()
	}
	select {
	case err := <-probeErr:
		return err
	default:
	}
	return errors.New("watch closed")
}

// probe asks etcd for a key count every probeEvery and ends the watch
// (cancel) when it does not answer.
func probe(s *Store, ctx context.Context, cancel context.CancelFunc, out chan<- error) {
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pctx, pcancel := context.WithTimeout(ctx, probeEvery)
		_, err := s.cli.Get(pctx, s.prefix+"/", clientv3.WithCountOnly(), clientv3.WithPrefix())
		pcancel()
		if err != nil && ctx.Err() == nil {
			out <- err
			cancel()
			return
		}
	}
}

// overrideOf is the override an event leaves: the key's value, or for a
// deletion an empty one for the key's rule and server.
func overrideOf(k, prefix string, ev *clientv3.Event) (pool.Override, error) {
	if ev.Type != clientv3.EventTypeDelete {
		return decode(ev.Kv.Value)
	}
	rule, addr, ok := strings.Cut(strings.TrimPrefix(k, prefix), "/")
	if !ok {
		return pool.Override{}, errors.New("not <rule>/<address>")
	}
	r, err := url.PathUnescape(rule)
	if err != nil {
		return pool.Override{}, err
	}
	return pool.Override{Rule: r, Address: addr}, nil
}

func decode(b []byte) (pool.Override, error) { return pool.ParseOverride(b) }
