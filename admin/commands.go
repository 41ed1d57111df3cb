package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"g6/shared"
)

// sessionTimeout bounds how long show sessions waits for a worker.
const sessionTimeout = time.Second

// run executes one line; the reply has no trailing empty line yet.
func (s *Server) run(line string) (string, bool) {
	cmd, err := Parse(line)
	switch {
	case errors.Is(err, ErrEmpty):
		return "", false
	case err != nil:
		return "error: " + err.Error(), false
	}
	switch cmd.Name {
	case "help":
		return Help, false
	case "quit":
		return "", true
	case "reload":
		if err := s.Backend.Reload(); err != nil {
			return "error: reload: " + err.Error(), false
		}
		return "reload started", false
	case "show":
		return s.show(cmd), false
	}
	return s.serverCmd(cmd), false
}

func (s *Server) show(cmd Command) string {
	snap := s.Backend.Snapshot()
	var doc any
	var text string
	switch cmd.What {
	case "rules":
		doc, text = showRules(&snap)
	case "servers":
		doc, text = showServers(&snap)
	case "workers":
		doc, text = showWorkers(&snap)
	case "stats":
		doc, text = showStats(&snap)
	case "sessions":
		sessions, missing := s.Backend.Sessions(sessionTimeout)
		doc, text = showSessions(sessions, missing)
	}
	if !cmd.JSON {
		return text
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

// serverCmd runs disable, enable and heartbeat on every rule holding the
// server.
func (s *Server) serverCmd(cmd Command) string {
	snap := s.Backend.Snapshot()
	now := shared.Now()
	var out []string
	found := false
	for i, r := range snap.Config.Rules {
		for j, srv := range r.Servers {
			ap, err := netip.ParseAddrPort(srv.Address)
			if err != nil || netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) != cmd.Server {
				continue
			}
			found = true
			slot := snap.Region.Server(snap.Servers[i][j])
			switch cmd.Name {
			case "disable":
				until := shared.Forever
				if cmd.Seconds > 0 {
					until = now + cmd.Seconds*int64(time.Second)
				}
				slot.Disable(until)
			case "enable":
				slot.Enable()
			case "heartbeat":
				if srv.Heartbeat == 0 {
					continue
				}
				slot.Heartbeat(now, int64(srv.Heartbeat))
			}
			out = append(out, fmt.Sprintf("%s %s %d %s", r.ID, cmd.Server.Addr(), cmd.Server.Port(), done[cmd.Name]))
		}
	}
	switch {
	case !found:
		return fmt.Sprintf("error: %s: no rule has server %s", cmd.Name, cmd.Server)
	case len(out) == 0:
		return fmt.Sprintf("error: heartbeat: server %s has no heartbeat period in any rule", cmd.Server)
	}
	return strings.Join(out, "\n")
}

var done = map[string]string{"disable": "disabled", "enable": "enabled", "heartbeat": "heartbeat"}
