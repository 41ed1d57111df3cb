package worker

import (
	"time"

	"golang.org/x/sys/unix"

	"g6/shared"
)

// What a session that ends tells the master's outlier ejection about its
// server (shared.ServerSlot's EjectStreak, Retrans, SegsOut); the master
// judges (master/outlier.go). A connect or TLS failure is counted where
// it happens (serverFailed), a first byte sets the streak back (timing).

// judgeServer counts a session that the server failed before its first
// byte (it reset or closed), and adds the server socket's retransmits
// when the rule asks for them (SetTCPInfo: one getsockopt as the session
// ends, none on the data path).
func (w *Worker) judgeServer(s *session) {
	sl := s.server.slot
	if !s.rtDone && (s.front.aborted || s.reason == endServerClose) {
		sl.EjectStreak.Add(1)
	}
	if sl.Settings.Load()&shared.SetTCPInfo != 0 {
		w.addTCPInfo(s)
	}
}

// tcpInfoEvery is how often a long session's server socket is read for
// its retransmits (a session that ends is read as it ends).
const tcpInfoEvery = int64(5 * time.Second)

// sweepTCPInfo adds what long sessions' server sockets retransmitted
// since the last look, every tcpInfoEvery: a gray failure under a few
// long sessions shows before they end. What was added is kept in
// w.tcpSeen, outside the session (which must stay in its size class).
func (w *Worker) sweepTCPInfo() {
	if w.now < w.tcpInfoAt {
		return
	}
	w.tcpInfoAt = w.now + tcpInfoEvery
	for _, s := range w.live {
		if s.server != nil && s.state == stateEstablished && w.now-s.started >= tcpInfoEvery &&
			s.server.slot.Settings.Load()&shared.SetTCPInfo != 0 {
			w.addTCPInfo(s)
		}
	}
}

// addTCPInfo adds to s's server what its socket retransmitted and sent
// since the last look (the kernel's counters are 32-bit: differences
// wrap correctly).
func (w *Worker) addTCPInfo(s *session) {
	if s.back.fd < 0 {
		return
	}
	info, err := unix.GetsockoptTCPInfo(s.back.fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return
	}
	seen := w.tcpSeen[s]
	sl := s.server.slot
	sl.Retrans.Add(int64(info.Total_retrans - seen[0]))
	sl.SegsOut.Add(int64(info.Segs_out - seen[1]))
	if w.tcpSeen == nil {
		w.tcpSeen = map[*session][2]uint32{}
	}
	w.tcpSeen[s] = [2]uint32{info.Total_retrans, info.Segs_out}
}
