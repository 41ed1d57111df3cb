package master

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"g6/conf"
	"g6/pool"

	"golang.org/x/sys/unix"
)

// TestParseG6Fds: G6's "N|fd|fd|...|" hand-over, as literal rows.
func TestParseG6Fds(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		err  string
	}{
		{"1|3|", []int{3}, ""},
		{"2|3|4|", []int{3, 4}, ""},
		{"2|3|4", []int{3, 4}, ""}, // the last | is optional
		{"0|", nil, ""},
		{"2|3|", nil, "want \"N|fd|...|\" with N fds"},
		{"x|3|", nil, "want \"N|fd|...|\""},
		{"1|2|", nil, "bad fd \"2\""}, // 0-2 are stdio
		{"1|fd|", nil, "bad fd \"fd\""},
		{"", nil, "want"},
	}
	for _, tt := range tests {
		got, err := parseG6Fds(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q: error %v, want %q", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || !reflect.DeepEqual(got, tt.want)):
			t.Errorf("%q: %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseG6Fds(f *testing.F) {
	for _, s := range []string{"1|3|", "2|3|4|", "0|", "x", "|||", "3|4|5|6|"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fds, err := parseG6Fds(s)
		if err != nil {
			return
		}
		for _, fd := range fds {
			if fd < 3 {
				t.Fatalf("%q gave fd %d", s, fd)
			}
		}
	})
}

// TestWorkerCount: -w, then the config, then one per CPU, never above
// conf.MaxWorkers.
func TestWorkerCount(t *testing.T) {
	cpus := min(runtime.NumCPU(), conf.MaxWorkers)
	for _, tt := range []struct{ flag, config, want int }{
		{0, 0, cpus}, {2, 0, 2}, {0, 3, 3}, {2, 3, 2}, {100, 0, conf.MaxWorkers}, {0, 100, conf.MaxWorkers},
	} {
		if got := workerCount(tt.flag, tt.config); got != tt.want {
			t.Errorf("workerCount(%d, %d) = %d, want %d", tt.flag, tt.config, got, tt.want)
		}
	}
}

// TestPickSockets: slot i of n takes every socket j with j%n == i; with
// fewer sockets than workers (G6's hand-over) slots share them.
func TestPickSockets(t *testing.T) {
	for _, tt := range []struct {
		fds     []int
		slot, n int
		want    []int
	}{
		{[]int{10, 11}, 0, 2, []int{10}},
		{[]int{10, 11}, 1, 2, []int{11}},
		{[]int{10, 11, 12, 13}, 1, 2, []int{11, 13}},
		{[]int{10}, 3, 4, []int{10}},
		{[]int{10, 11}, 3, 4, []int{11}},
	} {
		if got := pickSockets(tt.fds, tt.slot, tt.n); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("pickSockets(%v, %d, %d) = %v, want %v", tt.fds, tt.slot, tt.n, got, tt.want)
		}
	}
}

// TestUpgradeReadyFd: the ready socket of a master started by USR2 comes
// from its environment; any other master has none.
func TestUpgradeReadyFd(t *testing.T) {
	t.Setenv(envUpgrade, "")
	if fd := upgradeReadyFd(); fd != -1 {
		t.Errorf("no upgrade: %d", fd)
	}
	t.Setenv(envUpgrade, `{"ready":3,"shared":4,"parent":1}`)
	if fd := upgradeReadyFd(); fd != 3 {
		t.Errorf("upgrade: %d, want 3", fd)
	}
	t.Setenv(envUpgrade, `{not json`)
	if fd := upgradeReadyFd(); fd != -1 {
		t.Errorf("garbage: %d", fd)
	}
}

// TestByRule: the pool's entries are lined up with the config's rules by
// id, whatever the pool's order, and a rule the pool lacks has none.
func TestByRule(t *testing.T) {
	cfg := &conf.Config{Rules: []conf.Rule{{ID: "a"}, {ID: "b"}, {ID: "c"}}}
	entries := [][]pool.Entry{{{Rule: "c"}}, {{Rule: "a"}, {Rule: "a"}}}
	got := byRule(cfg, entries)
	if len(got) != 3 || len(got[0]) != 2 || got[1] != nil || len(got[2]) != 1 || got[2][0].Rule != "c" {
		t.Fatalf("byRule: %+v", got)
	}
}

// TestWritePidFile: the pid file is replaced whole.
func TestWritePidFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g6.pid")
	os.WriteFile(path, []byte("999999\n"), 0o644)
	if err := writePidFile(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(os.Getpid()) {
		t.Fatalf("pid file %q", b)
	}
	if _, err := os.Stat(path + ".new"); !os.IsNotExist(err) {
		t.Fatal("the temporary file stayed")
	}
}

// TestUpgradeEnvFormats: a successor reads the named set, and an older
// parent's fields as the same set.
func TestUpgradeEnvFormats(t *testing.T) {
	for _, tt := range []struct {
		env  string
		want []namedFd
	}{
		{`{"fds":[{"kind":"ready","fd":3},{"kind":"listen","name":"127.0.0.1:80","fd":5},{"kind":"listen","name":"127.0.0.1:80","fd":6}],"parent":9}`,
			[]namedFd{{fdReady, "", 3}, {fdListen, "127.0.0.1:80", 5}, {fdListen, "127.0.0.1:80", 6}}},
		{`{"listeners":[{"addr":"127.0.0.1:80","fd":5}],"admin":[{"addr":"127.0.0.1:8600","fd":6}],"shared":4,"ready":3,"parent":9,"state":7}`,
			[]namedFd{{fdReady, "", 3}, {fdShared, "", 4}, {fdState, "", 7}, {fdListen, "127.0.0.1:80", 5}, {fdAdmin, "127.0.0.1:8600", 6}}},
	} {
		var h upgradeEnv
		if err := json.Unmarshal([]byte(tt.env), &h); err != nil {
			t.Fatal(err)
		}
		if got := h.fds(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %v\nwant %v", tt.env, got, tt.want)
		}
	}
}

// TestFdsIn: each fd is taken once, by kind and name; what nobody took is
// closed.
func TestFdsIn(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	unused, err := unix.Dup(p[0])
	if err != nil {
		t.Fatal(err)
	}
	in := newFdsIn([]namedFd{{fdListen, "a", p[0]}, {fdListen, "a", p[1]}, {fdSteer, "", unused}})
	if got := in.takeAll(fdListen); len(got) != 2 {
		t.Fatalf("takeAll: %v", got)
	}
	if _, ok := in.take(fdListen, "a"); ok {
		t.Fatal("a listener taken twice")
	}
	if _, ok := in.take(fdState, ""); ok {
		t.Fatal("a kind that was not passed")
	}
	in.closeUntaken()
	if _, err := unix.FcntlInt(uintptr(unused), unix.F_GETFD, 0); err == nil {
		t.Error("the untaken fd is still open")
	}
	if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_GETFD, 0); err != nil {
		t.Error("a taken fd was closed")
	}
	unix.Close(p[0])
	unix.Close(p[1])
}
