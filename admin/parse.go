package admin

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"g6/conf"
)

// MaxLine bounds one command line.
const MaxLine = 4096

// Command is one parsed admin line.
type Command struct {
	Name     string // canonical: one of the Cmd* names, "show", "reload", "help", "quit"
	What     string // for show: rules, sessions, servers, workers, stats
	JSON     bool
	Rule     string // add server, del server, set weight RULE IP:PORT N
	Server   netip.AddrPort
	Seconds  int64  // disable, drain: 0 = no end
	Weight   *int   // add server, set weight
	MaxConns *int64 // add server, set max_connections
	Backup   bool   // add server
	Now      bool   // del server ... now: close its sessions too
}

// Names of the commands on servers.
const (
	CmdDisable   = "disable"
	CmdEnable    = "enable"
	CmdHeartbeat = "heartbeat"
	CmdAdd       = "add server"
	CmdDel       = "del server"
	CmdWeight    = "set weight"
	CmdMaxConns  = "set max_connections"
	CmdDrain     = "drain"
	CmdShutdown  = "shutdown sessions"
)

// ErrEmpty is returned for a blank line, which gets no reply.
var ErrEmpty = errors.New("empty line")

// ShowLists are what show shows (Show builds each; the console serves
// them under /api/v1/); Help and parseShow's error list them.
var ShowLists = []string{"rules", "sessions", "servers", "workers", "stats", "nodes", "resolvers", "certs"}

var showUsage = "show " + strings.Join(ShowLists, "|") + " [json]"

// Parse reads one line (without its line ending).
func Parse(line string) (Command, error) {
	if !utf8.ValidString(line) || strings.ContainsFunc(line, isControl) {
		return Command{}, errors.New("binary data is not a command (try help)")
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return Command{}, ErrEmpty
	}
	name := strings.ToLower(f[0])
	args := f[1:]
	switch name {
	case "?", "help":
		return Command{Name: "help"}, nil
	case "quit", "exit":
		return Command{Name: "quit"}, nil
	case "reload":
		if len(args) > 0 {
			return Command{}, errors.New("usage: reload")
		}
		return Command{Name: "reload"}, nil
	case "show":
		return parseShow(args)
	case "disable", "enable", "heartbeat", "beartbeat", "drain":
		return parseServerCmd(canonical(name), args)
	case "add", "del", "set", "shutdown":
		return parseChange(name, args)
	}
	return Command{}, fmt.Errorf("unknown command %q (try help)", truncate(f[0]))
}

func canonical(name string) string {
	if name == "beartbeat" { // G6's own spelling in its docs and help text
		return "heartbeat"
	}
	return name
}

func parseShow(args []string) (Command, error) {
	c := Command{Name: "show"}
	if len(args) > 0 && strings.EqualFold(args[len(args)-1], "json") {
		c.JSON = true
		args = args[:len(args)-1]
	}
	if len(args) != 1 || !slices.Contains(ShowLists, strings.ToLower(args[0])) {
		return c, errors.New("usage: " + showUsage)
	}
	c.What = strings.ToLower(args[0])
	return c, nil
}

func parseServerCmd(name string, args []string) (Command, error) {
	usage := fmt.Errorf("usage: %s IP PORT", name)
	max := 2
	if name == CmdDisable || name == CmdDrain {
		usage = fmt.Errorf("usage: %s IP PORT [SECONDS]", name)
		max = 3
	}
	if len(args) < 2 || len(args) > max {
		return Command{}, usage
	}
	ap, err := ipPort(args[0], args[1])
	if err != nil {
		return Command{}, fmt.Errorf("%s: %w", name, err)
	}
	c := Command{Name: name, Server: ap}
	if len(args) == 3 {
		s, err := strconv.ParseInt(args[2], 10, 64)
		if err != nil || s <= 0 || s > 100*365*86400 {
			return Command{}, fmt.Errorf("%s: %q is not a number of seconds", name, truncate(args[2]))
		}
		c.Seconds = s
	}
	return c, nil
}

// parseChange reads the commands that change a rule's servers:
//
//	add server RULE IP:PORT [weight N] [max_connections N] [backup]
//	del server RULE IP:PORT [now]
//	set weight IP PORT N | set weight RULE IP:PORT N
//	set max_connections IP PORT N
//	shutdown sessions IP PORT
func parseChange(verb string, args []string) (Command, error) {
	if len(args) == 0 {
		return Command{}, changeUsage(verb)
	}
	name := verb + " " + strings.ToLower(args[0])
	args = args[1:]
	c := Command{Name: name}
	var err error
	switch name {
	case CmdAdd, CmdDel:
		if len(args) < 2 {
			return Command{}, changeUsage(verb)
		}
		if c.Rule, c.Server, err = ruleServer(name, args[0], args[1]); err != nil {
			return Command{}, err
		}
		if name == CmdDel {
			return c, delOptions(&c, args[2:])
		}
		return c, addOptions(&c, args[2:])
	case CmdWeight:
		if len(args) != 3 {
			return Command{}, errors.New("usage: set weight IP PORT N | set weight RULE IP:PORT N")
		}
		if isPort(args[1]) {
			c.Server, err = ipPort(args[0], args[1])
		} else {
			c.Rule, c.Server, err = ruleServer(name, args[0], args[1])
		}
		if err != nil {
			return Command{}, fmt.Errorf("%s: %w", name, err)
		}
		w, err := parseWeight(name, args[2])
		c.Weight = &w
		return c, err
	case CmdMaxConns:
		if len(args) != 3 {
			return Command{}, errors.New("usage: set max_connections IP PORT N")
		}
		if c.Server, err = ipPort(args[0], args[1]); err != nil {
			return Command{}, fmt.Errorf("%s: %w", name, err)
		}
		n, err := parseLimit(name, args[2])
		c.MaxConns = &n
		return c, err
	case CmdShutdown:
		if len(args) != 2 {
			return Command{}, errors.New("usage: shutdown sessions IP PORT")
		}
		if c.Server, err = ipPort(args[0], args[1]); err != nil {
			return Command{}, fmt.Errorf("%s: %w", name, err)
		}
		return c, nil
	}
	return Command{}, changeUsage(verb)
}

func changeUsage(verb string) error {
	switch verb {
	case "add":
		return errors.New("usage: add server RULE IP:PORT [weight N] [max_connections N] [backup]")
	case "del":
		return errors.New("usage: del server RULE IP:PORT [now]")
	case "set":
		return errors.New("usage: set weight IP PORT N | set weight RULE IP:PORT N | set max_connections IP PORT N")
	}
	return errors.New("usage: shutdown sessions IP PORT")
}

// ruleServer reads "RULE IP:PORT".
func ruleServer(name, rule, addr string) (string, netip.AddrPort, error) {
	if strings.ContainsRune(rule, '|') {
		return "", netip.AddrPort{}, fmt.Errorf("%s: %q is not a rule id", name, truncate(rule))
	}
	ap, err := conf.ParseHostPort(truncate(addr))
	if err != nil {
		return "", netip.AddrPort{}, fmt.Errorf("%s: %w", name, err)
	}
	return truncate(rule), ap, nil
}

func addOptions(c *Command, opts []string) error {
	for i := 0; i < len(opts); i++ {
		switch key := strings.ToLower(opts[i]); key {
		case "backup":
			c.Backup = true
		case "weight", "max_connections":
			if i+1 == len(opts) {
				return fmt.Errorf("%s: %s needs a number", c.Name, key)
			}
			i++
			if key == "weight" {
				w, err := parseWeight(c.Name, opts[i])
				if err != nil {
					return err
				}
				c.Weight = &w
				continue
			}
			n, err := parseLimit(c.Name, opts[i])
			if err != nil {
				return err
			}
			c.MaxConns = &n
		default:
			return fmt.Errorf("%s: unknown option %q (weight N, max_connections N, backup)", c.Name, truncate(opts[i]))
		}
	}
	return nil
}

func delOptions(c *Command, opts []string) error {
	switch {
	case len(opts) == 0:
		return nil
	case len(opts) == 1 && strings.EqualFold(opts[0], "now"):
		c.Now = true
		return nil
	}
	return changeUsage("del")
}

func parseWeight(name, s string) (int, error) {
	w, err := strconv.Atoi(s)
	if err != nil || !isPort(s) || w > conf.MaxWeight {
		return 0, fmt.Errorf("%s: weight %q is not a whole number 0-%d", name, truncate(s), conf.MaxWeight)
	}
	return w, nil
}

func parseLimit(name, s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > 1<<31 {
		return 0, fmt.Errorf("%s: max_connections %q is not a whole number (0 = no limit)", name, truncate(s))
	}
	return n, nil
}

// isPort reports whether s is all digits, as a PORT argument is.
func isPort(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == "" && len(s) <= 5
}

// ipPort reads the "IP PORT" of a server command ([::1] or ::1).
func ipPort(ip, port string) (netip.AddrPort, error) {
	return conf.ParseIPPort(strings.Trim(truncate(ip), "[]"), truncate(port))
}

func isControl(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Help is the reply to help and ?.
var Help = showUsage + `
disable IP PORT [SECONDS]
enable IP PORT       (also ends a drain)
heartbeat IP PORT    (alias: beartbeat)
add server RULE IP:PORT [weight N] [max_connections N] [backup]
del server RULE IP:PORT [now]
set weight IP PORT N | set weight RULE IP:PORT N    (0-256)
set max_connections IP PORT N    (0 = no limit)
drain IP PORT [SECONDS]
shutdown sessions IP PORT
reload
help, ?
quit`
