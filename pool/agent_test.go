package pool

import (
	"testing"

	"g6/shared"
)

// TestAgentLayer: an agent's percentage scales the config's weight and
// its maxconn sets the limit; an admin weight wins; down holds the server
// in the region; the word goes with the server; a reload keeps it.
func TestAgentLayer(t *testing.T) {
	tb, cfg := table(t, twoServers)
	flags := func(i int) int64 {
		es, _ := tb.Entries()
		return tb.region.Server(es[0][i].Slot).Flags.Load()
	}
	if err := tb.SetAgent("web", "127.0.0.1:9002", &Agent{State: AgentUp, Weight: 50, MaxConns: 7}); err != nil {
		t.Fatal(err)
	}
	if got, want := summary(tb), "127.0.0.1:9001 w1 config/config, 127.0.0.1:9002 w1 config/agent"; got != want {
		t.Errorf("at 50%% of 2: %s, want %s", got, want)
	}
	es, _ := tb.Entries()
	if e := es[0][1]; e.Server.MaxConnections != 7 || e.MaxConnsFrom != SourceAgent || e.Agent != AgentUp {
		t.Errorf("maxconn: %+v", e)
	}
	if _, err := tb.SetWeight("web", mustAddr("127.0.0.1:9002"), 6); err != nil {
		t.Fatal(err)
	}
	if got, want := summary(tb), "127.0.0.1:9001 w1 config/config, 127.0.0.1:9002 w6 config/admin"; got != want {
		t.Errorf("an admin weight over the agent's: %s, want %s", got, want)
	}
	tb.SetAgent("web", "127.0.0.1:9001", &Agent{State: AgentDown, Weight: -1, MaxConns: -1})
	if flags(0)&shared.FlagAgentDown == 0 || flags(1)&shared.FlagAgentDown != 0 {
		t.Errorf("flags %b %b: want only the first held by its agent", flags(0), flags(1))
	}
	if err := tb.Publish(cfg, []int{0}); err != nil { // a reload
		t.Fatal(err)
	}
	if flags(0)&shared.FlagAgentDown == 0 {
		t.Error("a reload forgot what the agent said")
	}
	tb.SetAgent("web", "127.0.0.1:9001", nil)
	if flags(0)&shared.FlagAgentDown != 0 {
		t.Error("a forgotten agent still holds its server")
	}
	if _, err := tb.Del("web", mustAddr("127.0.0.1:9002")); err != nil {
		t.Fatal(err)
	}
	if len(tb.agents) != 0 {
		t.Errorf("agents of removed servers kept: %v", tb.agents)
	}
}
