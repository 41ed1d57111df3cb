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
