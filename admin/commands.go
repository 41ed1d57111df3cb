package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"g6/fleet"
)

// WorkerTimeout bounds how long a command waits for each worker's answer
// (show sessions, shutdown sessions); a worker that takes longer is named
// as missing.
const WorkerTimeout = time.Second

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
	doc, text, err := Show(s.Backend, cmd.What)
	if err != nil {
		return "error: " + err.Error()
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

// Show builds what `show WHAT` answers: the document its json form
// marshals and its text. The console's /api/v1/WHAT serves the same
// document.
func Show(b Backend, what string) (doc any, text string, err error) {
	snap := b.Snapshot()
	switch what {
	case "rules":
		doc, text = showRules(&snap)
	case "servers":
		nodes, _ := b.Nodes() // not in a fleet, or the store away: no fleet view
		doc, text = showServers(&snap, nodes)
	case "workers":
		doc, text = showWorkers(&snap)
	case "stats":
		doc, text = showStats(&snap)
	case "sessions":
		sessions, missing := b.Sessions(WorkerTimeout)
		doc, text = showSessions(sessions, missing)
	case "nodes":
		nodes, err := b.Nodes()
		switch {
		case errors.Is(err, fleet.ErrUnavailable):
			return nil, "", err
		case err != nil:
			return nil, "", fmt.Errorf("show nodes: %w", err)
		}
		doc, text = showNodes(nodes)
	case "resolvers":
		doc, text = showResolvers(b.Resolvers(), time.Now())
	case "certs":
		doc, text = showCerts(snap.Config, time.Now())
	default:
		return nil, "", fmt.Errorf("show %s: no such list", what)
	}
	return doc, text, nil
}

// serverCmd runs a command on servers through the master, which changes
// the shared region, tells the workers and keeps the state file.
func (s *Server) serverCmd(cmd Command) string { return change(s.Backend, cmd) }

// ConsoleCommands are the admin commands the web console may run: the
// ones on one server (not reload, shutdown sessions or heartbeat).
var ConsoleCommands = []string{"disable", "enable", "drain", CmdAdd, CmdDel, CmdWeight, CmdMaxConns}

// Act runs one of ConsoleCommands given as an admin line, as the admin
// port would, and returns its reply.
func Act(b Backend, line string) (string, error) {
	cmd, err := Parse(line)
	if err != nil {
		return "", err
	}
	if !slices.Contains(ConsoleCommands, cmd.Name) {
		return "", fmt.Errorf("the console runs only %s", strings.Join(ConsoleCommands, ", "))
	}
	return change(b, cmd), nil
}

// change runs a server command through the master.
func change(b Backend, cmd Command) string {
	lines, err := b.Change(cmd)
	switch {
	case errors.Is(err, fleet.ErrUnavailable):
		return "error: " + err.Error() // scripts look for exactly this line
	case err != nil:
		return "error: " + cmd.Name + ": " + err.Error()
	}
	return strings.Join(lines, "\n")
}

// Line is one reply line of a server command: "RULE IP PORT what".
func Line(rule string, ap netip.AddrPort, what string) string {
	return fmt.Sprintf("%s %s %d %s", rule, ap.Addr(), ap.Port(), what)
}
