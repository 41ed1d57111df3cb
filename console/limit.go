package console

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The master's HTTP endpoints (metrics, the console) face whoever can reach
// them, and every connection they hold is a descriptor of the master: the
// one process that respawns workers, reloads and answers the admin port.
// So each endpoint holds at most maxConns connections, and perIP from one
// client address. A full endpoint makes room by closing its longest idle
// keep-alive connection (one between requests), so clients that connect
// and wait cannot keep a scraper out; with none idle, or past perIP, the
// new connection is closed at once and counted. maxConns is also at most
// an eighth of the master's open-file limit, so the endpoints together
// never take the descriptors supervision needs. Idle and slow clients are
// closed by the server's timeouts (startHTTP).

// limitListener is an endpoint's listener with those caps.
type limitListener struct {
	net.Listener
	addr    string
	max     int
	perIP   int
	mu      sync.Mutex
	open    int
	byIP    map[netip.Addr]int
	idle    map[*limitConn]time.Time // connections between requests, since when
	refused atomic.Int64
	warned  atomic.Int64 // unix seconds of the last "refused" log line
	log     *slog.Logger
}

func newLimitListener(ln net.Listener, addr string, maxConns, perIP int64, log *slog.Logger) *limitListener {
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && lim.Cur > 0 {
		maxConns = min(maxConns, int64(lim.Cur/8))
	}
	return &limitListener{Listener: ln, addr: addr, max: int(max(maxConns, 1)), perIP: int(perIP), byIP: map[netip.Addr]int{}, idle: map[*limitConn]time.Time{}, log: log}
}

// Accept returns the next connection within the caps, closing the others.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		l.mu.Lock()
		var evict *limitConn
		if l.open >= l.max && l.byIP[ip] < l.perIP {
			evict = l.longestIdle()
		}
		ok := (l.open < l.max || evict != nil) && l.byIP[ip] < l.perIP
		if ok {
			l.open++
			l.byIP[ip]++
		}
		l.mu.Unlock()
		if evict != nil {
			evict.Close()
		}
		if ok {
			return &limitConn{Conn: c, l: l, ip: ip}, nil
		}
		c.Close()
		if n := l.refused.Add(1); l.shouldWarn() {
			l.log.Warn("HTTP endpoint full: connections refused", "listen", l.addr, "client", ip,
				"max_connections", l.max, "max_connections_per_ip", l.perIP, "refused_total", n)
		}
	}
}

// shouldWarn lets one "refused" line through per minute.
func (l *limitListener) shouldWarn() bool {
	now := time.Now().Unix()
	last := l.warned.Load()
	return now-last >= 60 && l.warned.CompareAndSwap(last, now)
}

// longestIdle takes the connection idle longest out of the idle set
// (l.mu held), or returns nil.
func (l *limitListener) longestIdle() *limitConn {
	var oldest *limitConn
	var at time.Time
	for c, since := range l.idle {
		if oldest == nil || since.Before(at) {
			oldest, at = c, since
		}
	}
	delete(l.idle, oldest)
	return oldest
}

// connState follows the server's view of each connection (http.Server's
// ConnState): only one between requests may be evicted.
func (l *limitListener) connState(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*limitConn)
	if !ok {
		return
	}
	l.mu.Lock()
	if st == http.StateIdle {
		l.idle[c] = time.Now()
	} else {
		delete(l.idle, c)
	}
	l.mu.Unlock()
}

func (l *limitListener) release(c *limitConn) {
	ip := c.ip
	l.mu.Lock()
	delete(l.idle, c)
	l.open--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
	l.mu.Unlock()
}

func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// limitConn gives its place back once, when the server closes it.
type limitConn struct {
	net.Conn
	l    *limitListener
	ip   netip.Addr
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c) })
	return err
}
