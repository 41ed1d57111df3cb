package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// outcome is one failed session or stream: when it was open and why.
type outcome struct {
	start, end time.Time
	what       string
	truncated  bool // a stream that ended early without an error
}

// tally collects what the traffic loops saw.
type tally struct {
	mu          sync.Mutex
	sessions    int
	fast, slow  int
	failed      []outcome
	corrupt     []outcome // same length, other bytes: never explained
	streamBytes int64
	// The full-rate phase: its sessions, how long it ran, its failures
	// (never explained: nothing is killed then).
	fullSessions int
	fullTime     time.Duration
	fullFailed   []outcome
}

func (t *tally) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sessions
}

// fullRateLoop keeps n short sessions going back to back, as fast as the
// machine takes them, until ctx ends; a failure there is never explained.
func fullRateLoop(ctx context.Context, addr string, n int, t *tally, wg *sync.WaitGroup) {
	defer wg.Done()
	var loops sync.WaitGroup
	for range n {
		loops.Add(1)
		go func() {
			defer loops.Done()
			for ctx.Err() == nil {
				start := time.Now()
				err := greet(addr)
				t.mu.Lock()
				t.sessions++
				if err != nil {
					t.fullFailed = append(t.fullFailed, outcome{start: start, end: time.Now(), what: "full-rate short: " + err.Error()})
				}
				t.mu.Unlock()
			}
		}()
	}
	loops.Wait()
}

func (t *tally) fail(o outcome) {
	t.mu.Lock()
	t.failed = append(t.failed, o)
	t.mu.Unlock()
}

// shortLoop opens rate checked sessions per second until ctx ends: each
// must greet with "hello from " within 5 s.
func shortLoop(ctx context.Context, addr string, rate int, t *tally, wg *sync.WaitGroup) {
	defer wg.Done()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	sem := make(chan struct{}, 512) // bounded in flight
	var inflight sync.WaitGroup
	defer inflight.Wait()
	start, started := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// Start every session that is due by now, so the rate holds even
		// when a tick comes late.
		due := int(time.Since(start).Seconds() * float64(rate))
		for ; started < due; started++ {
			startShort(addr, t, sem, &inflight)
		}
	}
}

// startShort starts one short session unless 512 are in flight already
// (then g6 has stopped answering, which counts as a failure).
func startShort(addr string, t *tally, sem chan struct{}, inflight *sync.WaitGroup) {
	select {
	case sem <- struct{}{}:
	default:
		t.fail(outcome{start: time.Now(), end: time.Now(), what: "short: 512 sessions in flight, none finishing"})
		return
	}
	inflight.Add(1)
	go func() {
		defer func() { <-sem; inflight.Done() }()
		shortSession(addr, t)
	}()
}

func shortSession(addr string, t *tally) {
	start := time.Now()
	err := greet(addr)
	t.mu.Lock()
	t.sessions++
	t.mu.Unlock()
	if err != nil {
		t.fail(outcome{start: start, end: time.Now(), what: "short: " + err.Error()})
	}
}

func greet(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "hello from ") {
		return fmt.Errorf("greeting %q", line)
	}
	return nil
}

// streamLoop runs streams one after another until ctx ends: size random
// bytes to the echo rule and back, hashed both ways; a slow reader takes
// 16 KiB every 5 ms.
func streamLoop(ctx context.Context, addr string, size int, slow bool, t *tally, wg *sync.WaitGroup) {
	defer wg.Done()
	for ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond) // streams take a share of the CPU, not all of it
		start := time.Now()
		n, sent, got, err := stream(addr, size, slow)
		o := outcome{start: start, end: time.Now()}
		t.mu.Lock()
		if slow {
			t.slow++
		} else {
			t.fast++
		}
		t.streamBytes += n
		t.mu.Unlock()
		switch {
		case err != nil:
			o.what = fmt.Sprintf("stream: %v after %d of %d bytes", err, n, size)
			t.fail(o)
		case n != int64(size):
			o.what, o.truncated = fmt.Sprintf("stream: ended after %d of %d bytes", n, size), true
			t.fail(o)
		case !bytes.Equal(sent, got):
			o.what = fmt.Sprintf("stream: %d bytes came back changed (sha256 %x, sent %x)", n, got[:8], sent[:8])
			t.mu.Lock()
			t.corrupt = append(t.corrupt, o)
			t.mu.Unlock()
		}
	}
}

// stream returns the bytes read back and the sha256 of what was sent and
// of what came back.
func stream(addr string, size int, slow bool) (int64, []byte, []byte, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, nil, nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	sent := sha256.New()
	werr := make(chan error, 1)
	go func() { werr <- send(c.(*net.TCPConn), size, sent) }()
	got := sha256.New()
	var n int64
	if slow {
		n, err = slowRead(c, got)
	} else {
		n, err = io.Copy(got, c)
	}
	if e := <-werr; err == nil && e != nil {
		err = e
	}
	return n, sent.Sum(nil), got.Sum(nil), err
}

func send(c *net.TCPConn, size int, h hash.Hash) error {
	buf := make([]byte, 64<<10)
	for left := size; left > 0; {
		b := buf[:min(left, len(buf))]
		rand.Read(b)
		h.Write(b)
		if _, err := c.Write(b); err != nil {
			return err
		}
		left -= len(b)
	}
	return c.CloseWrite()
}

func slowRead(c net.Conn, h hash.Hash) (int64, error) {
	buf := make([]byte, 16<<10)
	var n int64
	for {
		k, err := c.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}
