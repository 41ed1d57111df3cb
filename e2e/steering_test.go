package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"g6/admin"
	"g6/internal/testenv"
)

// steeringSetup: two workers, a greeting rule on front and an echo rule on
// echoFront, worker_steering = mode, an admin port; bin runs the master.
func steeringSetup(t *testing.T, mode, bin string) (m *testenv.Master, adminAddr, front, echoFront string) {
	greet, echo := testenv.Addr(t), testenv.Addr(t)
	testenv.Backend(t, "greet", greet)
	testenv.Backend(t, "echo", echo)
	adminAddr, front, echoFront = testenv.Addr(t), testenv.Addr(t), testenv.Addr(t)
	cfg := fmt.Sprintf(`
[global]
worker_steering = %q

[admin]
listen = [%q]
clients = ["127.0.0.1:*"]

[[rule]]
id = "greet"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q]

[[rule]]
id = "echo"
algorithm = "RR"
clients = ["*:*"]
listen = [%q]
servers = [%q]
`, mode, adminAddr, front, greet, echoFront, echo)
	m = testenv.StartMasterBin(t, bin, testenv.WriteConfig(t, cfg), []string{"-w", "2"})
	return
}

// showWorkers is show workers json, by slot.
func showWorkers(t *testing.T, adminAddr string) map[int]admin.WorkerInfo {
	t.Helper()
	var doc struct{ Workers []admin.WorkerInfo }
	if err := json.Unmarshal([]byte(adminSend(t, adminAddr, "show workers json\n")), &doc); err != nil {
		t.Fatal(err)
	}
	out := map[int]admin.WorkerInfo{}
	for _, w := range doc.Workers {
		out[w.Slot] = w
	}
	return out
}

// greetAll makes n connections, conc at a time, each of which must get
// the greeting within d; it returns how many did not.
func greetAll(addr string, n, conc int, d time.Duration) (failed int64, errs []string) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad atomic.Int64
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if err := greetOnce(addr, d); err != nil {
					bad.Add(1)
					mu.Lock()
					errs = append(errs, err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return bad.Load(), errs
}

func greetOnce(addr string, d time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, d)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d))
	b := make([]byte, 64)
	n, err := c.Read(b)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b[:n]), "hello from") {
		return fmt.Errorf("got %q", b[:n])
	}
	return nil
}

// TestSteeringStoppedWorker: with worker_steering = "least", a SIGSTOPped
// worker is steered away within a second, and 200 new connections all get
// their greeting within 2 s while it stays stopped (the watchdog has not
// killed it); it takes connections again once it answers. With "hash" a
// share of the same connections hang in the stopped worker's queue.
func TestSteeringStoppedWorker(t *testing.T) {
	bin := testenv.Bin(t, "g6")
	t.Run("least", func(t *testing.T) {
		m, adminAddr, front, _ := steeringSetup(t, "least", bin)
		ws := showWorkers(t, adminAddr)
		if ws[0].Steering != "least" || ws[1].Steering != "least" {
			t.Fatalf("show workers: %+v, want both steered \"least\"", ws)
		}
		stopped := ws[0].Pid
		syscall.Kill(stopped, syscall.SIGSTOP)
		defer syscall.Kill(stopped, syscall.SIGCONT)
		stop := time.Now()
		m.WaitLog(t, "worker not answering; new connections go to the others", 3*time.Second)
		t.Logf("steered away %v after the SIGSTOP", time.Since(stop).Round(time.Millisecond))
		// A connection sent to the stopped worker would wait until the
		// watchdog replaces it (5 s): the per-connection limit is below that.
		if failed, errs := greetAll(front, 200, 20, 4*time.Second); failed != 0 {
			t.Fatalf("%d of 200 connections failed with a stopped worker: %v", failed, errs[:min(len(errs), 5)])
		}
		if w := showWorkers(t, adminAddr)[0]; w.Pid != stopped || w.Steering != "away" {
			t.Fatalf("slot 0 is %+v, want pid %d steered away", w, stopped)
		}
		syscall.Kill(stopped, syscall.SIGCONT)
		m.WaitLog(t, "worker answers again; new connections go to it", 3*time.Second)
		if w := showWorkers(t, adminAddr)[0]; w.Pid != stopped || w.Steering != "least" {
			t.Fatalf("slot 0 is %+v after SIGCONT, want pid %d back in", w, stopped)
		}
		if strings.Contains(m.Log(), "killing it") {
			t.Fatal("the watchdog killed the stopped worker: the test proves nothing about steering")
		}
	})
	t.Run("hash", func(t *testing.T) {
		_, adminAddr, front, _ := steeringSetup(t, "hash", bin)
		ws := showWorkers(t, adminAddr)
		if ws[0].Steering != "hash" {
			t.Fatalf("show workers: %+v, want \"hash\"", ws)
		}
		syscall.Kill(ws[0].Pid, syscall.SIGSTOP)
		defer syscall.Kill(ws[0].Pid, syscall.SIGCONT)
		time.Sleep(time.Second)
		failed, _ := greetAll(front, 40, 40, time.Second)
		t.Logf("hash: %d of 40 connections hung on the stopped worker", failed)
		if failed == 0 {
			t.Fatal("with the kernel's hash no connection hung on the stopped worker: the stopped-worker test cannot tell steering from luck")
		}
	})
}

// TestSteeringFewestSessions: 100 long sessions opened while worker 1 is
// stopped all land on worker 0; once worker 1 answers again, the next 100
// all go to it. After a reload show workers still counts all 200.
func TestSteeringFewestSessions(t *testing.T) {
	m, adminAddr, _, echoFront := steeringSetup(t, "least", testenv.Bin(t, "g6"))
	ws := showWorkers(t, adminAddr)
	syscall.Kill(ws[1].Pid, syscall.SIGSTOP)
	defer syscall.Kill(ws[1].Pid, syscall.SIGCONT)
	m.WaitLog(t, "worker not answering", 3*time.Second)
	open := func(step string) {
		for i := range 100 {
			h := holdEcho(t, echoFront)
			h.check(t, fmt.Sprintf("%s %d", step, i))
		}
	}
	open("first")
	syscall.Kill(ws[1].Pid, syscall.SIGCONT)
	m.WaitLog(t, "worker answers again", 3*time.Second)
	ws = showWorkers(t, adminAddr)
	if ws[0].Sessions != 100 || ws[1].Sessions != 0 {
		t.Fatalf("after the first 100: worker 0 has %d sessions, worker 1 %d; want 100 and 0", ws[0].Sessions, ws[1].Sessions)
	}
	open("second")
	ws = showWorkers(t, adminAddr)
	if ws[0].Sessions != 100 || ws[1].Sessions != 100 {
		t.Fatalf("after the next 100: worker 0 has %d sessions, worker 1 %d; want 100 each", ws[0].Sessions, ws[1].Sessions)
	}
	// A reload hands the 200 sessions to new workers, whose counters are
	// not their slots: show workers still counts them all.
	syscall.Kill(m.Pid(), syscall.SIGHUP)
	m.WaitLog(t, "reloaded", 20*time.Second)
	goneWithin(t, 5*time.Second, "the old workers, their sessions handed over", ws[0].Pid, ws[1].Pid)
	ws = showWorkers(t, adminAddr)
	if ws[0].Sessions+ws[1].Sessions != 200 {
		t.Fatalf("after a reload show workers counts %d and %d sessions, want 200 in all", ws[0].Sessions, ws[1].Sessions)
	}
}

// TestWithoutBPF: a master without CAP_BPF and CAP_NET_ADMIN (and
// CAP_SYS_ADMIN, which also allows BPF) says once that worker_steering =
// "least" is not available, and that accel = "auto" copies, and serves
// with the kernel's hash, copying.
func TestWithoutBPF(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop capabilities from")
	}
	bin := testenv.Bin(t, "g6")
	wrapper := filepath.Join(t.TempDir(), "g6-nobpf")
	script := fmt.Sprintf("#!/bin/sh\nexec setpriv --inh-caps=-all --bounding-set=-bpf,-sys_admin,-perfmon,-net_admin %q \"$@\"\n", bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("G6_ACCEL", "auto")
	m, adminAddr, front, _ := steeringSetup(t, "least", wrapper)
	if n := strings.Count(m.Log(), `worker_steering = \"least\" is not available here`); n != 1 {
		t.Fatalf("the master said %d times that least steering is unavailable, want once:\n%s", n, m.Log())
	}
	if n := strings.Count(m.Log(), `accel = \"auto\": sockmap not available here; sessions are copied`); n != 1 {
		t.Fatalf("the master said %d times that accel falls back, want once:\n%s", n, m.Log())
	}
	if failed, errs := greetAll(front, 20, 4, 2*time.Second); failed != 0 {
		t.Fatalf("%d of 20 connections failed: %v", failed, errs)
	}
	for slot, w := range showWorkers(t, adminAddr) {
		if w.Steering != "hash" {
			t.Fatalf("worker %d steering %q, want hash", slot, w.Steering)
		}
	}
}

// TestSteeringAcrossUpgradeAndReload: a USR2 successor attaches its own
// program (its workers are steered, a stopped one is avoided), and a HUP
// to worker_steering = "hash" detaches it (a stopped worker gets its share
// again).
func TestSteeringAcrossUpgradeAndReload(t *testing.T) {
	m, adminAddr, front, _ := steeringSetup(t, "least", testenv.Bin(t, "g6"))
	old := m.Pid()
	syscall.Kill(old, syscall.SIGUSR2)
	m.WaitLog(t, "upgrade complete", 20*time.Second)
	waitPidChange(t, m, old)
	goneWithin(t, 5*time.Second, "the old master", old)
	ws := showWorkers(t, adminAddr)
	if ws[0].Steering != "least" || ws[1].Steering != "least" {
		t.Fatalf("after USR2: %+v, want both steered", ws)
	}
	stopped := ws[0].Pid
	syscall.Kill(stopped, syscall.SIGSTOP)
	within(t, 3*time.Second, "the new master steering away from the stopped worker", func() error {
		if w := showWorkers(t, adminAddr)[0]; w.Steering != "away" {
			return fmt.Errorf("slot 0 is %q", w.Steering)
		}
		return nil
	})
	if failed, errs := greetAll(front, 100, 20, 2*time.Second); failed != 0 {
		t.Fatalf("%d of 100 connections failed after the upgrade: %v", failed, errs[:min(len(errs), 5)])
	}
	syscall.Kill(stopped, syscall.SIGCONT)

	b, err := os.ReadFile(m.Config)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(m.Config, []byte(strings.Replace(string(b), `worker_steering = "least"`, `worker_steering = "hash"`, 1)), 0o644)
	syscall.Kill(m.Pid(), syscall.SIGHUP)
	within(t, 10*time.Second, "the reload to hash", func() error {
		ws = showWorkers(t, adminAddr)
		if ws[0].Steering != "hash" || ws[0].Pid == stopped {
			return fmt.Errorf("workers %+v", ws)
		}
		return nil
	})
	syscall.Kill(ws[0].Pid, syscall.SIGSTOP)
	defer syscall.Kill(ws[0].Pid, syscall.SIGCONT)
	time.Sleep(time.Second)
	if failed, _ := greetAll(front, 40, 40, time.Second); failed == 0 {
		t.Fatal("after the reload to hash no connection waited on the stopped worker: the program is still attached")
	}
}
