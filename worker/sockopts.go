package worker

import (
	"g6/conf"
	"g6/shared"

	"golang.org/x/sys/unix"
)

// sockopts are what one side of a session sets on its socket: TCP
// keepalive (keepalive = { ... }) and TCP_QUICKACK (quickack), on the
// client socket at accept (listen level) and on the server socket before
// connect (server level). Linux does not keep TCP_QUICKACK: it covers the
// start of the connection, until the kernel's own heuristics take over.
type sockopts struct {
	set                   bool // any of the below: the fast path tests only this
	idle, interval, count int  // keepalive; idle 0 = off
	quickack              bool
}

func listenSockopts(l conf.Listen) sockopts {
	o := sockopts{quickack: l.QuickAck}
	if k := l.Keepalive; k.On() {
		o.idle, o.interval, o.count = int(k.Idle.D().Seconds()), int(k.Interval.D().Seconds()), k.Count
	}
	o.set = o.idle > 0 || o.quickack
	return o
}

func slotSockopts(sl *shared.ServerSlot) sockopts {
	o := sockopts{quickack: sl.Settings.Load()&shared.SetQuickAck != 0}
	o.idle, o.interval, o.count = shared.UnpackKeepalive(sl.Keepalive.Load())
	o.set = o.idle > 0 || o.quickack
	return o
}

// apply sets the options on fd; a failure costs the option, not the session.
func (o *sockopts) apply(fd int) {
	if o.idle > 0 {
		sysSetInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
		sysSetInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, o.idle)
		sysSetInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, o.interval)
		sysSetInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, o.count)
	}
	if o.quickack {
		sysSetInt(fd, unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	}
}
