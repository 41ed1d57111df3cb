package main

import (
	"fmt"
	"os"
	"syscall"
)

// daemonize re-executes `g6 master` without --daemon in a new session with
// stdio on /dev/null, and returns at once.
func daemonize(args []string) int {
	var rest []string
	for _, a := range args {
		if a != "--daemon" && a != "-daemon" {
			rest = append(rest, a)
		}
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "g6:", err)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "g6:", err)
		return 1
	}
	fd := null.Fd() // a regular file: Fd's switch to blocking mode is harmless
	_, err = syscall.ForkExec(exe, append([]string{exe, "master"}, rest...), &syscall.ProcAttr{
		Env: os.Environ(), Files: []uintptr{fd, fd, fd},
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "g6: daemon:", err)
		return 1
	}
	return 0
}
