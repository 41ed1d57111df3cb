package master

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"g6/ipc"

	"golang.org/x/sys/unix"
)

// workerProc is one running worker process.
type workerProc struct {
	slot    int
	pid     int
	conn    net.Conn
	started time.Time
	ready   bool
	exited  bool
}

// exitEvent reports a worker's end.
type exitEvent struct {
	w      *workerProc
	status syscall.WaitStatus
}

// spawn starts a worker for slot with the given listening sockets and sends
// it its setup. exits receives the worker's end; ready its ready message.
func (m *Master) spawn(slot int, listeners []int, setup *ipc.Setup) (*workerProc, error) {
	mfd, wfd, err := ipc.Socketpair()
	if err != nil {
		return nil, err
	}
	files := []uintptr{0, 1, 2, uintptr(wfd), uintptr(m.region.Fd())}
	for _, fd := range listeners {
		files = append(files, uintptr(fd))
	}
	pid, err := syscall.ForkExec("/proc/self/exe", []string{m.exe, "worker"}, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: files,
	})
	unix.Close(wfd)
	if err != nil {
		unix.Close(mfd)
		return nil, fmt.Errorf("master: start worker %d: %w", slot, err)
	}
	f := os.NewFile(uintptr(mfd), fmt.Sprintf("worker-%d", slot))
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		return nil, fmt.Errorf("master: worker %d channel: %w", slot, err)
	}
	w := &workerProc{slot: slot, pid: pid, conn: conn, started: time.Now()}
	go waitWorker(w, m.exits)
	msg, err := ipc.New(ipc.TypeConfig, 0, setup)
	if err == nil {
		err = ipc.Write(conn, msg)
	}
	if err != nil {
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

// readWorker forwards a worker's messages until its channel closes.
func readWorker(w *workerProc, out chan<- workerMsg) {
	for {
		msg, err := ipc.Read(w.conn)
		if err != nil {
			return
		}
		out <- workerMsg{w: w, msg: msg}
	}
}

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
	msg, err := ipc.New(typ, 0, body)
	if err == nil {
		w.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
		err = ipc.Write(w.conn, msg)
	}
	if err != nil {
		m.log.Debug("message to worker failed", "slot", w.slot, "type", typ, "err", err)
	}
}

func describeExit(ws syscall.WaitStatus) string {
	switch {
	case ws.Signaled():
		return "killed by signal " + ws.Signal().String()
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	}
	return fmt.Sprintf("status %#x", uint32(ws))
}
