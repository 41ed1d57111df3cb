package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a started process (pinned with taskset) and its log.
type proc struct {
	cmd *exec.Cmd
	log string
}

func start(dir, name string, cpu int, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	args = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, args...)
	if topo.proxyNS != "" {
		// ip netns exec execs the command: the group's leader is still it.
		args = append([]string{"ip", "netns", "exec", topo.proxyNS}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &proc{cmd: cmd, log: logPath}, nil
}

// stop ends the process group, politely first.
func (p *proc) stop() {
	if p == nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT)
	done := make(chan struct{})
	go waitDone(p.cmd, done)
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func waitDone(cmd *exec.Cmd, done chan<- struct{}) {
	cmd.Wait()
	close(done)
}

func (p *proc) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// groupPids lists the processes of p's process group (taskset execs the
// program, so the group is the proxy and its children).
func (p *proc) groupPids() []int {
	var out []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		pgid, err := syscall.Getpgid(pid)
		if err == nil && pgid == p.cmd.Process.Pid {
			out = append(out, pid)
		}
	}
	return out
}

// rssKiB is the summed resident memory of the group.
func (p *proc) rssKiB() int64 {
	var total int64
	for _, pid := range p.groupPids() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				f := strings.Fields(line)
				n, _ := strconv.ParseInt(f[1], 10, 64)
				total += n
			}
		}
	}
	return total
}

// cpuTicks is the summed user+system time of the group, in clock ticks.
func (p *proc) cpuTicks() int64 {
	var total int64
	for _, pid := range p.groupPids() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			k, _ := strconv.ParseInt(f[12], 10, 64)
			total += u + k
		}
	}
	return total
}

func freePort() int {
	if topo.proxyNS != "" {
		nextPort++
		return nextPort
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPort(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not come up", addr)
}
