package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const request = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"

// readResponse reads one response of the backends (7-byte body).
func readResponse(r *bufio.Reader) (string, error) {
	length := -1
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "content-length") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if length < 0 {
		return "", fmt.Errorf("no content-length")
	}
	body := make([]byte, length)
	_, err := io.ReadFull(r, body)
	return string(body), err
}

// preflight: 10 requests must succeed; through a proxy they must reach
// more than one backend.
func preflight(t *target) error {
	seen := map[string]int{}
	for i := 0; i < 10; i++ {
		c, err := net.DialTimeout("tcp", t.web, 2*time.Second)
		if err != nil {
			return fmt.Errorf("preflight %s: %w", t.name, err)
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
		body, err := readResponse(bufio.NewReader(c))
		c.Close()
		if err != nil {
			return fmt.Errorf("preflight %s: %w", t.name, err)
		}
		seen[body]++
	}
	if t.name != "direct" && len(seen) < 2 {
		return fmt.Errorf("preflight %s: all requests went to %v", t.name, seen)
	}
	return nil
}

var (
	reqRE = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	pctRE = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$`)
	errRE = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// wrkResult is one wrk run.
type wrkResult struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
}

func runWrk(url string, conns int, d time.Duration, close bool) (wrkResult, error) {
	args := []string{"-c", "1", "wrk", "-t2", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", int(d.Seconds())), "--latency"}
	if close {
		args = append(args, "-H", "Connection: close")
	}
	args = append(args, url)
	out, err := exec.Command("taskset", args...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	var r wrkResult
	m := reqRE.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk output without Requests/sec:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	for _, p := range pctRE.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(p[2]), 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(p[3])]
		if string(p[1]) == "50" {
			r.p50 = time.Duration(v * float64(unit))
		} else {
			r.p99 = time.Duration(v * float64(unit))
		}
	}
	if e := errRE.FindSubmatch(out); e != nil {
		for _, x := range e[1:] {
			n, _ := strconv.Atoi(string(x))
			r.errors += n
		}
	}
	return r, nil
}

// runIperf returns Gbit/s received through addr with n streams.
func runIperf(addr string, n int, d time.Duration) (float64, error) {
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("taskset", "-c", "1", "iperf3", "-c", host, "-p", port, "-t",
		strconv.Itoa(int(d.Seconds())), "-P", strconv.Itoa(n), "-J").Output()
	if err != nil {
		return 0, fmt.Errorf("iperf3: %v\n%s", err, out)
	}
	var j struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &j); err != nil {
		return 0, fmt.Errorf("iperf3 json: %w", err)
	}
	return j.End.SumReceived.BitsPerSecond / 1e9, nil
}

// idleResult: n connections opened, held, then each asked one request.
type idleResult struct {
	rssBefore, rssAfter int64 // KiB
	answered, n         int
}

func runIdle(t *target, n int) (idleResult, error) {
	res := idleResult{n: n, rssBefore: t.proc.rssKiB()}
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 100) // 100 dials in flight
	var mu sync.Mutex
	var firstErr error
	for i := range conns {
		sem <- struct{}{}
		wg.Add(1)
		go dialIdle(t.web, &conns[i], sem, &wg, &mu, &firstErr)
	}
	wg.Wait()
	defer closeAll(conns)
	if firstErr != nil {
		return res, firstErr
	}
	time.Sleep(2 * time.Second)
	res.rssAfter = t.proc.rssKiB()
	var answered sync.WaitGroup
	var ok int64
	var okMu sync.Mutex
	for i := 0; i < len(conns); i += len(conns) / 100 {
		end := min(i+len(conns)/100, len(conns))
		answered.Add(1)
		go askAll(conns[i:end], &answered, &okMu, &ok)
	}
	answered.Wait()
	res.answered = int(ok)
	return res, nil
}

func dialIdle(addr string, out *net.Conn, sem chan struct{}, wg *sync.WaitGroup, mu *sync.Mutex, firstErr *error) {
	defer wg.Done()
	defer func() { <-sem }()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		mu.Lock()
		if *firstErr == nil {
			*firstErr = fmt.Errorf("idle dial: %w", err)
		}
		mu.Unlock()
		return
	}
	*out = c
}

func askAll(conns []net.Conn, wg *sync.WaitGroup, mu *sync.Mutex, ok *int64) {
	defer wg.Done()
	for _, c := range conns {
		if c == nil {
			continue
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, request); err != nil {
			continue
		}
		if _, err := readResponse(bufio.NewReader(c)); err == nil {
			mu.Lock()
			*ok++
			mu.Unlock()
		}
	}
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// runLatency offers a fixed request rate (below saturation) to every target
// at once, each over its own 20 keep-alive connections, and reports each
// target's latency percentiles. Every tick sends one request to each target,
// so a disturbance on this shared machine hits all of them alike and the
// differences between targets mean something even when one round's p99
// does not.
func runLatency(addrs []string, rate int, d time.Duration) (p50, p99 []time.Duration, err error) {
	const nconn = 20
	idle := make([]chan *probeConn, len(addrs))
	lat := make([][]time.Duration, len(addrs))
	for i, addr := range addrs {
		idle[i] = make(chan *probeConn, nconn)
		for j := 0; j < nconn; j++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return nil, nil, err
			}
			defer c.Close()
			idle[i] <- &probeConn{c: c, r: bufio.NewReader(c), lat: &lat[i]}
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(d)
	for n := 0; time.Now().Before(end); n++ {
		<-tick.C
		for k := range addrs {
			i := (n + k) % len(addrs) // rotate who goes first
			select {
			case pc := <-idle[i]:
				wg.Add(1)
				go probe(pc, idle[i], &wg, &mu)
			default: // every connection busy: the offered rate is too high
			}
		}
	}
	wg.Wait()
	for i, l := range lat {
		if len(l) == 0 {
			return nil, nil, fmt.Errorf("latency probe: no answers from %s", addrs[i])
		}
		sort.Slice(l, func(a, b int) bool { return l[a] < l[b] })
		p50 = append(p50, l[len(l)/2])
		p99 = append(p99, l[len(l)*99/100])
	}
	return p50, p99, nil
}

type probeConn struct {
	c   net.Conn
	r   *bufio.Reader
	lat *[]time.Duration // the target's latencies
}

func probe(pc *probeConn, idle chan<- *probeConn, wg *sync.WaitGroup, mu *sync.Mutex) {
	defer wg.Done()
	start := time.Now()
	pc.c.SetDeadline(start.Add(5 * time.Second))
	if _, err := io.WriteString(pc.c, request); err != nil {
		return
	}
	if _, err := readResponse(pc.r); err != nil {
		return
	}
	el := time.Since(start)
	mu.Lock()
	*pc.lat = append(*pc.lat, el)
	mu.Unlock()
	idle <- pc
}
