package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestControlSurvivesGC: with a collection after every loop turn
// (G6_DEBUG_GC), a worker keeps its control channel while it accepts
// hundreds of clients: nothing lets the GC close fd 3 under it, so every
// connection is served by the same worker and show sessions still gets its
// answer.
func TestControlSurvivesGC(t *testing.T) {
	t.Setenv("G6_DEBUG_GC", "1")
	m, adminAddr, front, _, _ := adminSetup(t, "1")
	pid := m.Workers(t)[0]
	countGreetings(t, front, 300)
	if r := adminSend(t, adminAddr, "show sessions\n"); strings.Contains(r, "missing") || strings.Contains(r, "error") {
		t.Fatalf("show sessions after 300 connections: %q", r)
	}
	if w := m.Workers(t); len(w) != 1 || w[0] != pid {
		t.Fatalf("workers %v, want the first one (%d) still serving", w, pid)
	}
	if strings.Contains(m.Log(), "master channel closed") {
		t.Fatal("the worker lost its control channel")
	}
}

// TestWatchdogReplacesStuckWorker: a worker that stops answering its
// control channel (here: stopped) is killed and replaced, and its
// replacement serves.
func TestWatchdogReplacesStuckWorker(t *testing.T) {
	m, _, front, _, _ := adminSetup(t, "1")
	pid := m.Workers(t)[0]
	syscall.Kill(pid, syscall.SIGSTOP)
	defer syscall.Kill(pid, syscall.SIGCONT)
	m.WaitLog(t, "worker stopped answering its control channel", 10*time.Second)
	m.WaitLog(t, "respawning", 3*time.Second)
	if !strings.Contains(m.Log(), fmt.Sprint("pid=", pid)) {
		t.Fatalf("the log does not name the stuck worker %d", pid)
	}
	countGreetings(t, front, 5)
}
