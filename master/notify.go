package master

import (
	"fmt"
	"net"
	"os"
)

// sdNotify sends a state line to systemd when started with Type=notify
// ($NOTIFY_SOCKET); it does nothing otherwise. Hand-written: the protocol is
// one datagram, not worth a dependency.
func sdNotify(state string) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	c.Write([]byte(state))
}

func notifyReady()     { sdNotify("READY=1\nSTATUS=serving") }
func notifyReloading() { sdNotify("RELOADING=1") }
func notifyStopping()  { sdNotify("STOPPING=1") }

// notifyMainPID tells systemd that this process is now the main one (after
// a USR2 upgrade, the new master).
func notifyMainPID() { sdNotify(fmt.Sprintf("MAINPID=%d\nREADY=1", os.Getpid())) }

// announce writes the pid file and tells whoever waits (an upgrading old
// master, systemd) that this master serves.
func (m *Master) announce(inh *inheritance) {
	if m.opts.PidFile != "" {
		if err := writePidFile(m.opts.PidFile); err != nil {
			m.log.Error("pid file", "err", err)
		}
	}
	inh.ready(m)
	if inh.readyFd >= 0 || m.parent != 0 {
		notifyMainPID()
	} else {
		notifyReady()
	}
}

// writePidFile replaces path with this process's pid in one rename, so a
// script reading it during an upgrade never finds it empty (a kill with an
// empty or zero pid signals the caller's whole process group).
func writePidFile(path string) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
