package master

import (
	"os"

	"g6/accel"
	"g6/conf"
)

// envAccel overrides the config's accel (the test suite's second run
// forces "sockmap" with it).
const envAccel = "G6_ACCEL"

// wantAccel decides whether cfg's workers pair sessions in the kernel. The
// host is probed once (a sockmap and the program, then closed), and the
// first decision is logged with its reason; a forced "sockmap" the host
// cannot do is an error in the log, and sessions are copied.
func (m *Master) wantAccel(cfg *conf.Config) bool {
	mode := cfg.Global.Accel
	switch v := os.Getenv(envAccel); v {
	case "":
	case conf.AccelOff, conf.AccelSockmap, conf.AccelAuto:
		mode = v
	default:
		m.log.Error(envAccel+" is not off, sockmap or auto; the config's accel applies", envAccel, v)
	}
	if mode != conf.AccelSockmap && mode != conf.AccelAuto {
		return false
	}
	first := !m.accelProbed
	if first {
		m.accelProbed = true
		m.accelErr = accel.Available()
	}
	switch {
	case m.accelErr == nil:
		if first {
			m.log.Info("accel: keep-alive sessions are forwarded in the kernel (sockmap)", "accel", mode)
		}
		return true
	case mode == conf.AccelSockmap:
		m.log.Error("accel = \"sockmap\" is not available here; sessions are copied", "err", m.accelErr,
			"needs", "CAP_BPF and CAP_NET_ADMIN")
	case first:
		m.log.Info("accel = \"auto\": sockmap not available here; sessions are copied", "err", m.accelErr)
	}
	return false
}
