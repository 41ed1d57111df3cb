package testenv

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// DNS is a real DNS server (dnsmasq, --no-resolv) on 127.0.0.1 at a random
// port, answering only from the hosts and SRV records a test writes, with
// a 1 s TTL. It is authoritative for everything (--local=/#/): a name it
// has no record of is NXDOMAIN, a type it has none of an empty answer.
type DNS struct {
	Addr  string // 127.0.0.1:PORT
	t     testing.TB
	port  int
	hosts string
	conf  string
	cmd   *exec.Cmd
}

// StartDNS starts dnsmasq; the test's cleanup stops it.
func StartDNS(t testing.TB) *DNS {
	t.Helper()
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Fatal("testenv: dnsmasq is not installed (apt-get install dnsmasq-base; .ci/run does)")
	}
	dir := t.TempDir()
	d := &DNS{t: t, port: FreePort(t), hosts: filepath.Join(dir, "hosts"), conf: filepath.Join(dir, "dnsmasq.conf")}
	d.Addr = "127.0.0.1:" + strconv.Itoa(d.port)
	d.write(d.hosts, "")
	d.write(d.conf, "")
	d.Start()
	t.Cleanup(d.Stop)
	return d
}

func (d *DNS) write(path, text string) {
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// Start runs dnsmasq (again) and waits until it answers.
func (d *DNS) Start() {
	d.t.Helper()
	d.cmd = exec.Command("dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces",
		"--listen-address=127.0.0.1", "--port="+strconv.Itoa(d.port), "--addn-hosts="+d.hosts,
		"--conf-file="+d.conf, "--local-ttl=1", "--local=/#/", "--user=root", "--pid-file=", "--cache-size=0")
	d.cmd.Stdout, d.cmd.Stderr = io.Discard, io.Discard
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := exec.Command("dig", "@127.0.0.1", "-p", strconv.Itoa(d.port), "+time=1", "+tries=1", "ping.invalid").Output(); err == nil {
			return
		}
		if i == 100 {
			d.t.Fatalf("testenv: dnsmasq on %s does not answer", d.Addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills dnsmasq; Start brings it back with the same records.
func (d *DNS) Stop() {
	if d.cmd != nil && d.cmd.Process != nil {
		d.cmd.Process.Kill()
		d.cmd.Wait()
		d.cmd = nil
	}
}

// SetHosts replaces the A/AAAA records ("IP NAME..." lines, as /etc/hosts)
// and has dnsmasq reread them (SIGHUP).
func (d *DNS) SetHosts(lines ...string) {
	d.t.Helper()
	d.write(d.hosts, strings.Join(lines, "\n")+"\n")
	if d.cmd != nil {
		d.cmd.Process.Signal(syscall.SIGHUP)
	}
}

// SetSRV replaces the SRV records ("NAME,TARGET,PORT,PRIORITY,WEIGHT" each,
// dnsmasq's srv-host); dnsmasq reads them only at start, so it restarts.
func (d *DNS) SetSRV(records ...string) {
	d.t.Helper()
	var b strings.Builder
	for _, r := range records {
		b.WriteString("srv-host=" + r + "\n")
	}
	d.write(d.conf, b.String())
	d.Stop()
	d.Start()
}

// Dig asks the server for name's records of type typ, one answer per line.
func (d *DNS) Dig(name, typ string) string {
	out, _ := exec.Command("dig", "@127.0.0.1", "-p", strconv.Itoa(d.port), "+short", "+time=1", "+tries=1", name, typ).Output()
	return strings.TrimSpace(string(out))
}

// RefusingDNS is a DNS server (miekg/dns, on 127.0.0.1 UDP and TCP at a
// random port) that answers A queries from a fixed table and REFUSES
// every query of the type refused: the server of issue #32, which dnsmasq
// cannot be made to play (it answers a missing type with an empty answer).
type RefusingDNS struct {
	Addr string
}

// StartRefusingDNS serves a (name → IPv4 addresses) and refuses qtype.
func StartRefusingDNS(t testing.TB, a map[string][]string, refused uint16) *RefusingDNS {
	t.Helper()
	port := FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		switch qt := q.Question[0].Qtype; {
		case qt == refused:
			m.Rcode = dns.RcodeRefused
		case qt == dns.TypeA:
			for _, ip := range a[strings.TrimSuffix(strings.ToLower(q.Question[0].Name), ".")] {
				rr, _ := dns.NewRR(q.Question[0].Name + " 1 IN A " + ip)
				m.Answer = append(m.Answer, rr)
			}
		}
		w.WriteMsg(m)
	})
	for _, network := range []string{"udp", "tcp"} {
		srv := &dns.Server{Addr: addr, Net: network, Handler: h}
		started := make(chan error, 1)
		srv.NotifyStartedFunc = func() { started <- nil }
		go func() { started <- srv.ListenAndServe() }()
		if err := <-started; err != nil {
			t.Fatalf("testenv: refusing DNS server on %s/%s: %v", addr, network, err)
		}
		t.Cleanup(func() { srv.Shutdown() })
	}
	return &RefusingDNS{Addr: addr}
}
