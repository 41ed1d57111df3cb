package worker

import (
	"testing"

	"g6/ipc"

	"golang.org/x/sys/unix"
)

// TestStreamPassesFds: frames queued with fds arrive in order with their
// fds, which work on the receiving end (here: the write ends of pipes),
// and take refuses to claim more than arrived.
func TestStreamPassesFds(t *testing.T) {
	a, b, err := ipc.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	unix.SetNonblock(a, true)
	unix.SetNonblock(b, true)
	tx, rx := newStream(a), newStream(b)
	defer tx.close()
	defer rx.close()
	var pipes [][2]int
	for range 3 {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(p[0])
		defer unix.Close(p[1])
		pipes = append(pipes, p)
	}
	first, _ := ipc.New(ipc.TypeHandoff, 1, nil)
	second, _ := ipc.New(ipc.TypeHandoff, 2, nil)
	if err := tx.queue(first, pipes[0][1], pipes[1][1]); err != nil {
		t.Fatal(err)
	}
	if err := tx.queue(second, pipes[2][1]); err != nil {
		t.Fatal(err)
	}
	if err := rx.read(); err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		id  uint64
		fds int
	}{{1, 2}, {2, 1}} {
		m, ok, err := rx.dec.Next()
		if err != nil || !ok || m.ID != want.id {
			t.Fatalf("message %d: %+v %v %v", i, m, ok, err)
		}
		fds, ok := rx.take(want.fds)
		if !ok {
			t.Fatalf("message %d: its %d fds did not arrive", i, want.fds)
		}
		for _, fd := range fds {
			if _, err := unix.Write(fd, []byte{byte('a' + i)}); err != nil {
				t.Errorf("a received fd does not work: %v", err)
			}
			unix.Close(fd)
		}
	}
	got := make([]byte, 1)
	for i, p := range pipes {
		if n, _ := unix.Read(p[0], got); n != 1 || got[0] != byte('a'+i/2) {
			t.Errorf("pipe %d got %q", i, got[:n])
		}
	}
	if _, ok := rx.take(1); ok {
		t.Error("take claimed an fd that never came")
	}
	tx.close()
	if err := rx.read(); err != errStreamClosed {
		t.Errorf("read after the peer closed: %v", err)
	}
}
