package accel

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPairWhileClientSpeaks: 500 sessions are paired right after an
// answer while their client sends the next request; every request reaches
// the server and its answer comes back (the server's socket goes into the
// map first, the client's bytes wait for the kick).
func TestPairWhileClientSpeaks(t *testing.T) {
	p := newPairs(t)
	back, _ := net.Listen("tcp", "127.0.0.1:0")
	defer back.Close()
	go func() {
		for {
			c, err := back.Accept()
			if err != nil {
				return
			}
			go io.Copy(c, c)
		}
	}()
	front, _ := net.Listen("tcp", "127.0.0.1:0")
	defer front.Close()
	for i := range 500 {
		c, _ := net.Dial("tcp", front.Addr().String())
		ac, _ := front.Accept()
		bc, _ := net.Dial("tcp", back.Addr().String())
		a, b := rawFd(t, ac), rawFd(t, bc)
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write([]byte("round0"))
		buf := make([]byte, 64)
		n := readSome(a, buf)
		unix.Write(b, buf[:n])
		n = readSome(b, buf)
		go func() {
			io.ReadFull(c, make([]byte, 6))
			time.Sleep(time.Duration(i%20) * time.Microsecond)
			c.Write([]byte("round1"))
		}()
		unix.Write(a, buf[:n])
		pr, _, err := p.Pair(a, b, [2]uint64{Window, Window})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:6]); err != nil {
			wb, _ := Written(b)
			wa, _ := Written(a)
			t.Fatalf("session %d: %v; moved a %d b %d spilled %v %v written b %d a %d", i, err,
				p.Moved(pr.Slot[0]), p.Moved(pr.Slot[1]), p.Spilled(pr.Slot[0]), p.Spilled(pr.Slot[1]), wb, wa)
		}
		c.Close()
		p.Unpair(pr)
		unix.Close(a)
		unix.Close(b)
		p.Free(pr)
	}
}

func readSome(fd int, b []byte) int {
	for {
		n, err := unix.Read(fd, b)
		if err == unix.EAGAIN {
			time.Sleep(10 * time.Microsecond)
			continue
		}
		return n
	}
}
