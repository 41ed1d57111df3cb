package master

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"g6/ipc"

	"golang.org/x/sys/unix"
)

// workerProc is one running worker process. The master loop owns ready and
// exited (read by the admin under Master.mu); wmu serialises writes to conn
// and pending routes replies to requests.
type workerProc struct {
	gen     *generation
	slot    int
	counter int
	pid     int
	conn    net.Conn
	started time.Time
	ready   bool
	exited  bool
	away    bool          // steered away: a ping went unanswered (steering.go)
	done    chan struct{} // closed when the loop has seen the exit

	wmu     sync.Mutex
	pmu     sync.Mutex
	pending map[uint64]chan ipc.Message
	nextID  atomic.Uint64
}

// exitEvent reports a worker's end.
type exitEvent struct {
	w      *workerProc
	status syscall.WaitStatus
}

// spawn starts a worker for slot of g with the given listening sockets and
// sends it its setup. m.exits receives the worker's end, m.msgs its messages.
func (m *Master) spawn(g *generation, slot, counter int, listeners []int, setup *ipc.Setup) (*workerProc, error) {
	mfd, wfd, err := ipc.Socketpair()
	if err != nil {
		return nil, err
	}
	files := []uintptr{0, 1, 2, uintptr(wfd), uintptr(m.region.Fd())}
	for _, fd := range listeners {
		files = append(files, uintptr(fd))
	}
	if g.steer {
		setup.Steer = len(files)
		files = append(files, uintptr(m.steer.Fd()))
	}
	pid, err := syscall.ForkExec("/proc/self/exe", []string{m.exe, "worker"}, &syscall.ProcAttr{
		Env:   workerEnv(),
		Files: files,
	})
	unix.Close(wfd)
	if err != nil {
		unix.Close(mfd)
		return nil, fmt.Errorf("master: start worker %d: %w", slot, err)
	}
	// f owns mfd only until FileConn has made its own duplicate; closing
	// it here (not at some GC) is on purpose.
	f := os.NewFile(uintptr(mfd), fmt.Sprintf("worker-%d", slot))
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		return nil, fmt.Errorf("master: worker %d channel: %w", slot, err)
	}
	w := &workerProc{gen: g, slot: slot, counter: counter, pid: pid, conn: conn, started: time.Now(),
		pending: map[uint64]chan ipc.Message{}, done: make(chan struct{})}
	go waitWorker(w, m.exits)
	if err := w.write(ipc.TypeConfig, 0, setup); err != nil {
		m.log.Error("send setup to worker", "slot", slot, "pid", pid, "err", err)
	}
	go readWorker(w, m.msgs)
	return w, nil
}

// workerMsg is a message from a worker.
type workerMsg struct {
	w   *workerProc
	msg ipc.Message
}

// readWorker routes a worker's messages until its channel closes: replies
// to their requests, the rest to the master loop.
func readWorker(w *workerProc, out chan<- workerMsg) {
	for {
		msg, err := ipc.Read(w.conn)
		if err != nil {
			return
		}
		if msg.Type == ipc.TypeReply {
			w.pmu.Lock()
			ch := w.pending[msg.ID]
			delete(w.pending, msg.ID)
			w.pmu.Unlock()
			if ch != nil {
				ch <- msg
			}
			continue
		}
		out <- workerMsg{w: w, msg: msg}
	}
}

// write sends one message, bounded by a deadline so a stopped worker
// cannot block the caller.
func (w *workerProc) write(typ string, id uint64, body any) error {
	msg, err := ipc.New(typ, id, body)
	if err != nil {
		return err
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	return ipc.Write(w.conn, msg)
}

// request sends a request and waits up to timeout for its reply.
func (w *workerProc) request(typ string, body any, timeout time.Duration) (ipc.Message, error) {
	id := w.nextID.Add(1)
	ch := make(chan ipc.Message, 1)
	w.pmu.Lock()
	w.pending[id] = ch
	w.pmu.Unlock()
	defer func() {
		w.pmu.Lock()
		delete(w.pending, id)
		w.pmu.Unlock()
	}()
	if err := w.write(typ, id, body); err != nil {
		return ipc.Message{}, err
	}
	select {
	case m := <-ch:
		if m.Error != "" {
			return m, fmt.Errorf("master: worker %d (pid %d): %s: %s", w.slot, w.pid, typ, m.Error)
		}
		return m, nil
	case <-time.After(timeout):
		return ipc.Message{}, fmt.Errorf("master: worker %d (pid %d): %s: %w within %v", w.slot, w.pid, typ, errNoAnswer, timeout)
	}
}

// errNoAnswer: a request went out and nothing came back in time.
var errNoAnswer = errors.New("no answer")

// waitWorker reaps the worker process and reports how it ended.
func waitWorker(w *workerProc, out chan<- exitEvent) {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(w.pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	out <- exitEvent{w: w, status: ws}
}

// send writes one message to a worker; errors mean the worker is gone,
// which its exit event reports.
func (m *Master) send(w *workerProc, typ string, body any) {
	if err := w.write(typ, 0, body); err != nil {
		m.log.Debug("message to worker failed", "slot", w.slot, "type", typ, "err", err)
	}
}

// workerEnv is the master's environment plus asyncpreemptoff: the worker's
// one goroutine calls functions constantly (cooperative preemption points),
// so the preemption signals sysmon would send every 10 ms are pure cost.
func workerEnv() []string {
	env := os.Environ()
	for _, kv := range env {
		if strings.HasPrefix(kv, "GODEBUG=") {
			return env
		}
	}
	return append(env, "GODEBUG=asyncpreemptoff=1")
}

func killProcess(pid int) { syscall.Kill(pid, syscall.SIGKILL) }

func describeExit(ws syscall.WaitStatus) string {
	switch {
	case ws.Signaled():
		return "killed by signal " + ws.Signal().String()
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	}
	return fmt.Sprintf("status %#x", uint32(ws))
}
