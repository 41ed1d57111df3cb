package pool

import (
	"g6/conf"
	"g6/shared"
)

// SourceAgent: a value the server's agent reported (agent_check).
const SourceAgent = "agent"

// Agent states, as an agent says them.
const (
	AgentUp    = "up"    // up or ready: takes connections
	AgentDown  = "down"  // down, fail, failed, stopped: none
	AgentDrain = "drain" // no new connections, the open ones go on
	AgentMaint = "maint" // in maintenance: none
)

// Agent is what a server's agent last said. It lives in the table only
// (not in the state file or the fleet store): it is the server's word
// about itself now, asked again every interval.
type Agent struct {
	State    string // one of the Agent states; "" = not said
	Weight   int    // percent of the weight from the config; -1 = not said
	MaxConns int64  // -1 = not said
}

// Over is a, with what it does not say taken from last.
func (a Agent) Over(last Agent) Agent {
	if a.State == "" {
		a.State = last.State
	}
	if a.Weight < 0 {
		a.Weight = last.Weight
	}
	if a.MaxConns < 0 {
		a.MaxConns = last.MaxConns
	}
	return a
}

// Holds reports whether the agent keeps new connections from the server.
func (a Agent) Holds() bool {
	return a.State == AgentDown || a.State == AgentDrain || a.State == AgentMaint
}

// SetAgent records what the agent of rule's server addr said and, if it
// changed anything, publishes it. nil forgets the agent (its check was
// removed). An admin's (or the fleet's) weight or max_connections wins
// over the agent's, as an admin change wins over the config.
func (t *Table) SetAgent(rule, addr string, a *Agent) error {
	defer t.changing()()
	key := conf.ServerKey(rule, conf.AddrKey(addr))
	old, had := t.agents[key]
	switch {
	case a == nil && !had, a != nil && had && old == *a:
		return nil
	case a == nil:
		delete(t.agents, key)
	default:
		if t.agents == nil {
			t.agents = map[string]Agent{}
		}
		t.agents[key] = *a
	}
	if !t.published {
		return nil
	}
	return t.publish(t.cfg, t.ruleSlots, t.state)
}

// applyAgent puts what e's agent said into e: its values where the
// config gave them, its state.
func applyAgent(e *Entry, a Agent) {
	if a.Weight >= 0 && (e.WeightFrom == SourceConfig || e.WeightFrom == SourceDNS) {
		e.Server.Weight = min(e.Server.Weight*a.Weight/100, conf.MaxWeight)
		e.WeightFrom = SourceAgent
	}
	if a.MaxConns >= 0 && e.MaxConnsFrom == SourceConfig {
		e.Server.MaxConnections, e.MaxConnsFrom = a.MaxConns, SourceAgent
	}
	e.Agent = a.State
}

// writeAgentFlag holds the server for its agent, or lets it go.
func writeAgentFlag(sl *shared.ServerSlot, e *Entry) {
	if (Agent{State: e.Agent}).Holds() {
		sl.Flags.Or(shared.FlagAgentDown)
	} else {
		sl.Flags.And(^int64(shared.FlagAgentDown))
	}
}
