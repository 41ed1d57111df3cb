package health

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"g6/conf"
	"g6/pool"
)

// maxAgentLine bounds the line an agent answers (HAProxy reads one
// buffer's worth; a real answer is a few words).
const maxAgentLine = 512

// AgentProbe asks one server's agent (HAProxy's agent protocol): connect
// to the agent's port, write send, read one line.
type AgentProbe struct {
	Check *conf.AgentCheck
	Addr  string // the agent, IP:port
}

// Run asks the agent once, within the check's timeout.
func (p *AgentProbe) Run(ctx context.Context) (pool.Agent, error) {
	ctx, cancel := context.WithTimeout(ctx, p.Check.Timeout.D())
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.Addr)
	if err != nil {
		return pool.Agent{}, fmt.Errorf("connect: %w", unwrapOp(err))
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	return askAgent(c, p.Check.Send)
}

// askAgent writes send and reads the agent's line. An agent that closes
// after its words without a line break is answered too.
func askAgent(c io.ReadWriter, send string) (pool.Agent, error) {
	if send != "" {
		if _, err := io.WriteString(c, send); err != nil {
			return pool.Agent{}, fmt.Errorf("send: %w", unwrapOp(err))
		}
	}
	line, err := bufio.NewReader(io.LimitReader(c, maxAgentLine+1)).ReadString('\n')
	switch {
	case len(line) > maxAgentLine:
		return pool.Agent{}, fmt.Errorf("answer: %w", errTooLong)
	case err != nil && (err != io.EOF || line == ""):
		return pool.Agent{}, fmt.Errorf("answer: %v", unwrapOp(err))
	}
	line = strings.TrimRight(line, "\r\n")
	return ParseAgent(line)
}

// ParseAgent reads an agent's words, separated by commas, spaces or tabs
// (HAProxy's agent protocol): up or ready; down, fail, failed or
// stopped; drain; maint; a weight "75%" of the configured one; and
// "maxconn:30". A word it does not know makes the whole line an error,
// and nothing in it is applied: a typo must not half-change a server.
func ParseAgent(line string) (pool.Agent, error) {
	a := pool.Agent{Weight: -1, MaxConns: -1}
	words := strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(words) == 0 {
		return a, fmt.Errorf("an empty answer")
	}
	for _, w := range words {
		lw := strings.ToLower(w)
		switch {
		case lw == "up" || lw == "ready":
			a.State = pool.AgentUp
		case lw == "down" || lw == "fail" || lw == "failed" || lw == "stopped":
			a.State = pool.AgentDown
		case lw == "drain":
			a.State = pool.AgentDrain
		case lw == "maint":
			a.State = pool.AgentMaint
		case strings.HasSuffix(lw, "%"):
			n, err := strconv.Atoi(lw[:len(lw)-1])
			if err != nil || n < 0 || n > 1000 {
				return a, fmt.Errorf("weight %s is not 0%%-1000%%", quote(w))
			}
			a.Weight = n
		case strings.HasPrefix(lw, "maxconn:"):
			n, err := strconv.ParseInt(lw[len("maxconn:"):], 10, 64)
			if err != nil || n < 0 {
				return a, fmt.Errorf("%s is not maxconn:N", quote(w))
			}
			a.MaxConns = n
		default:
			return a, fmt.Errorf("%s is not an agent word (up, down, drain, maint, N%%, maxconn:N)", quote(w))
		}
	}
	return a, nil
}
