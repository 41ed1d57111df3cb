package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"g6/internal/testenv"
)

// fdKinds counts a process's descriptors by kind: sockets, memfds, BPF
// maps and programs, pidfds, pipes, the rest by path.
func fdKinds(pid int) map[string]int {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	out := map[string]int{}
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		kind := link
		switch {
		case strings.HasPrefix(link, "socket:"):
			kind = "socket"
		case strings.HasPrefix(link, "pipe:"):
			kind = "pipe"
		case strings.HasPrefix(link, "/memfd:"):
			kind = strings.Fields(link)[0] // "/memfd:NAME (deleted)"
		}
		out[kind]++
	}
	return out
}

// gone reports whether the process has exited (a zombie counts: an
// upgraded master's parent is gone, and nothing may reap it).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

// masterState is what master pid holds once its predecessor prev is gone
// and nothing changed for half a second: its descriptors by kind and the
// counter slots claimed in the region.
func masterState(t *testing.T, pid, prev int) (map[string]int, int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); prev != 0 && !gone(prev); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the previous master %d did not exit", prev)
		}
	}
	read := func() (map[string]int, int) {
		r, err := testenv.OpenRegion(pid)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		return fdKinds(pid), r.WorkersClaimed()
	}
	fds, slots := read()
	for range 40 {
		time.Sleep(500 * time.Millisecond)
		f, s := read()
		if reflect.DeepEqual(f, fds) && s == slots {
			return fds, slots
		}
		fds, slots = f, s
	}
	t.Fatalf("master %d: descriptors and counter slots still changing: %v, %d", pid, fds, slots)
	return nil, 0
}

// TestUpgradeLimits: 100 USR2 in a row with -w 16, each once the previous
// one finished, then 100 HUP: every one succeeds, and the master holds the
// same descriptors (sockets, memfds, BPF maps and programs, pidfds) and the
// region the same claimed counter slots after the last as after the first
// (issue #31: the fourth USR2 with -w 16 ran out of counter slots).
func TestUpgradeLimits(t *testing.T) {
	rounds := 100
	if testing.Short() || os.Getenv("G6_ACCEL") != "" {
		rounds = 10 // the forced-accel pass: nothing here is paired
	}
	_, _, front, _, cfg := opsSetup(t, 2)
	text := strings.Replace(cfg(2), "[global]\n", "[global]\nworker_steering = \"least\"\n", 1)
	path := testenv.WriteConfig(t, text)
	m := testenv.StartMaster(t, path, []string{"-w", "16"})
	var firstFds map[string]int
	firstSlots := 0
	for i := 1; i <= rounds; i++ {
		old := m.Pid()
		m.Signal(t, syscall.SIGUSR2)
		m.WaitCount(t, "upgrade complete", i, 60*time.Second)
		waitPidChange(t, m, old)
		if i == 1 || i == rounds {
			fds, slots := masterState(t, m.Pid(), old)
			if i == 1 {
				firstFds, firstSlots = fds, slots
				t.Logf("after the first upgrade: %d counter slots, descriptors %v", slots, fds)
			} else if !reflect.DeepEqual(fds, firstFds) || slots != firstSlots {
				t.Errorf("after %d upgrades: %d counter slots, descriptors %v; after the first: %d, %v", i, slots, fds, firstSlots, firstFds)
			}
		}
	}
	if strings.Contains(m.Log(), "upgrade failed") {
		t.Fatal("an upgrade failed")
	}
	if _, err := testenv.Greeting(front); err != nil {
		t.Fatalf("after the upgrades: %v", err)
	}
	pid := m.Pid()
	for i := 1; i <= rounds; i++ {
		syscall.Kill(pid, syscall.SIGHUP)
		m.WaitCount(t, "msg=reloaded", i, 60*time.Second)
		if i == 1 || i == rounds {
			fds, slots := masterState(t, pid, 0)
			if i == 1 {
				firstFds, firstSlots = fds, slots
			} else if !reflect.DeepEqual(fds, firstFds) || slots != firstSlots {
				t.Errorf("after %d reloads: %d counter slots, descriptors %v; after the first: %d, %v", i, slots, fds, firstSlots, firstFds)
			}
		}
	}
	if strings.Contains(m.Log(), "reload failed") || strings.Contains(m.Log(), "reload refused") {
		t.Fatal("a reload failed")
	}
	if _, err := testenv.Greeting(front); err != nil {
		t.Fatalf("after the reloads: %v", err)
	}
}
