// Package load is a small TCP load generator used by tests and by
// tools/loadgen: it opens connections to an address, optionally expects a
// greeting prefix, sends a payload, and counts what succeeded.
package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options describe one run. The run is bounded by Count and by Duration,
// whichever comes first (Count 0 = no count bound; Duration 0 = none).
type Options struct {
	Addr        string
	Count       int           // connections in all
	Concurrency int           // connections in flight at once
	Rate        int           // new connections per second (0 = as fast as possible)
	Duration    time.Duration // stop starting new connections after this
	Expect      string        // prefix the first line must have ("" = no check)
	Send        string        // bytes to send after the greeting ("" = none)
	Timeout     time.Duration // per connection
	Source      string        // local IP to dial from ("" = any)
}

// Result counts outcomes; Answers counts each distinct first line.
type Result struct {
	OK, Failed int64
	Errors     map[string]int
	Answers    map[string]int
	Elapsed    time.Duration
}

func (r *Result) String() string {
	return fmt.Sprintf("ok=%d failed=%d in %v (%.0f conn/s) errors=%v", r.OK, r.Failed,
		r.Elapsed.Round(time.Millisecond), float64(r.OK+r.Failed)/r.Elapsed.Seconds(), r.Errors)
}

type runner struct {
	o      Options
	mu     sync.Mutex
	res    Result
	ok     atomic.Int64
	failed atomic.Int64
}

// Run performs the run and returns its result.
func Run(ctx context.Context, o Options) *Result {
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	r := &runner{o: o, res: Result{Errors: map[string]int{}, Answers: map[string]int{}}}
	start := time.Now()
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < o.Concurrency; i++ {
		wg.Add(1)
		go r.dialer(jobs, &wg)
	}
	feed(ctx, jobs, o.Count, o.Rate)
	wg.Wait()
	r.res.OK, r.res.Failed = r.ok.Load(), r.failed.Load()
	r.res.Elapsed = time.Since(start)
	return &r.res
}

// feed hands out jobs until the count, the context or the rate says stop.
func feed(ctx context.Context, jobs chan<- struct{}, count, rate int) {
	defer close(jobs)
	var tick *time.Ticker
	if rate > 0 {
		tick = time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
	}
	for i := 0; count == 0 || i < count; i++ {
		if tick != nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
		select {
		case jobs <- struct{}{}:
		case <-ctx.Done():
			return
		}
	}
}

func (r *runner) dialer(jobs <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for range jobs {
		answer, err := r.one()
		if err != nil {
			r.failed.Add(1)
			r.mu.Lock()
			r.res.Errors[err.Error()]++
			r.mu.Unlock()
			continue
		}
		r.ok.Add(1)
		r.mu.Lock()
		r.res.Answers[answer]++
		r.mu.Unlock()
	}
}

// one makes one connection; it returns the first line the server sent.
func (r *runner) one() (string, error) {
	d := net.Dialer{Timeout: r.o.Timeout}
	if r.o.Source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(r.o.Source)}
	}
	c, err := d.Dial("tcp", r.o.Addr)
	if err != nil {
		return "", simplify(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(r.o.Timeout))
	if r.o.Send != "" {
		if _, err := c.Write([]byte(r.o.Send)); err != nil {
			return "", simplify(err)
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", simplify(err)
	}
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, r.o.Expect) {
		return "", fmt.Errorf("unexpected answer %q", line)
	}
	return line, nil
}

// simplify drops addresses from errors so they group well in Result.Errors.
func simplify(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return fmt.Errorf("%s: %v", op.Op, op.Err)
	}
	return err
}
