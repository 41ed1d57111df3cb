package fleet

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The fleet's config is the text of a g6.toml under <prefix>/config,
// stored by `g6 push` and read by masters started with --etcd.

func configKey(prefix string) string { return prefix + "/config" }

// dial opens a short-lived client for push and fetch.
func dial(endpoints []string) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: opTimeout})
	if err != nil {
		return nil, fmt.Errorf("fleet: etcd %v: %w", endpoints, err)
	}
	return cli, nil
}

// PushConfig stores a config's text (validated by the caller) and returns
// the store's revision.
func PushConfig(endpoints []string, prefix string, text []byte) (int64, error) {
	cli, err := dial(endpoints)
	if err != nil {
		return 0, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	resp, err := cli.Put(ctx, configKey(prefix), string(text))
	if err != nil {
		return 0, fmt.Errorf("fleet: push to %v%s: %w", endpoints, configKey(prefix), err)
	}
	return resp.Header.Revision, nil
}

// FetchConfig reads the fleet's config text.
func FetchConfig(endpoints []string, prefix string) ([]byte, error) {
	cli, err := dial(endpoints)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	resp, err := cli.Get(ctx, configKey(prefix))
	if err != nil {
		return nil, fmt.Errorf("fleet: %w: %v", ErrUnavailable, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("fleet: no config at %s (store one with g6 push)", configKey(prefix))
	}
	return resp.Kvs[0].Value, nil
}

// WatchConfig calls changed (in its own goroutine) whenever the fleet's
// config key changes, until the store closes.
func (s *Store) WatchConfig(changed func()) {
	go watchConfigLoop(s, changed)
}

func watchConfigLoop(s *Store, changed func()) {
	for s.ctx.Err() == nil {
		wc := s.cli.Watch(clientv3.WithRequireLeader(s.ctx), configKey(s.prefix))
		for resp := range wc {
			if resp.Err() != nil {
				break
			}
			if len(resp.Events) > 0 {
				changed()
			}
		}
		select {
		case <-s.ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
