package admin

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"g6/conf"
)

// MaxLine bounds one command line.
const MaxLine = 4096

// Command is one parsed admin line.
type Command struct {
	Name    string // canonical: "show", "disable", "enable", "heartbeat", "reload", "help", "quit"
	What    string // for show: rules, sessions, servers, workers, stats
	JSON    bool
	Server  netip.AddrPort
	Seconds int64 // disable: 0 = until enabled
}

// ErrEmpty is returned for a blank line, which gets no reply.
var ErrEmpty = errors.New("empty line")

var shows = map[string]bool{"rules": true, "sessions": true, "servers": true, "workers": true, "stats": true}

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
	case "disable", "enable", "heartbeat", "beartbeat":
		return parseServerCmd(canonical(name), args)
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
	if len(args) != 1 || !shows[strings.ToLower(args[0])] {
		return c, errors.New("usage: show rules|sessions|servers|workers|stats [json]")
	}
	c.What = strings.ToLower(args[0])
	return c, nil
}

func parseServerCmd(name string, args []string) (Command, error) {
	usage := fmt.Errorf("usage: %s IP PORT", name)
	max := 2
	if name == "disable" {
		usage = errors.New("usage: disable IP PORT [SECONDS]")
		max = 3
	}
	if len(args) < 2 || len(args) > max {
		return Command{}, usage
	}
	ap, err := conf.ParseIPPort(strings.Trim(truncate(args[0]), "[]"), truncate(args[1]))
	if err != nil {
		return Command{}, fmt.Errorf("%s: %w", name, err)
	}
	c := Command{Name: name, Server: ap}
	if len(args) == 3 {
		s, err := strconv.ParseInt(args[2], 10, 64)
		if err != nil || s <= 0 || s > 100*365*86400 {
			return Command{}, fmt.Errorf("disable: %q is not a number of seconds", truncate(args[2]))
		}
		c.Seconds = s
	}
	return c, nil
}

func isControl(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Help is the reply to help and ?.
const Help = `show rules|sessions|servers|workers|stats [json]
disable IP PORT [SECONDS]
enable IP PORT
heartbeat IP PORT    (alias: beartbeat)
reload
help, ?
quit`
