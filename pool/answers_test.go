package pool

import (
	"path/filepath"
	"strings"
	"testing"

	"g6/conf"
	"g6/resolve"
)

const named = `
[[rule]]
id = "db"
algorithm = "RR"
clients = ["*:*"]
listen = ["127.0.0.1:8080"]
servers = [
  "127.0.0.1:9001",
  "db.test:5432",
  { srv = "_pg._tcp.db.test", max_connections = 100 },
  "127.0.0.1:9002",
]
`

func srv(addr string, weight int, backup bool) resolve.Server {
	return resolve.Server{Addr: mustAddr(addr), Weight: weight, Backup: backup}
}

func full(tb *Table) string {
	es, _ := tb.Entries()
	var out []string
	for _, e := range es[0] {
		s := e.Server.Address + " w" + itoa(e.Server.Weight) + " " + e.Origin + "/" + e.WeightFrom
		if e.Server.From != "" {
			s = e.Server.From + " → " + s
		}
		if e.Server.Backup {
			s += " backup"
		}
		if e.Server.MaxConnections != 0 {
			s += " max" + itoa(int(e.Server.MaxConnections))
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

// TestAnswersInPlace: each entry's servers go where the entry is written,
// with its options, the SRV weights and priorities, and an address the
// rule already has is not added twice.
func TestAnswersInPlace(t *testing.T) {
	tb, _ := table(t, named)
	if got, want := full(tb), "127.0.0.1:9001 w1 config/config, 127.0.0.1:9002 w1 config/config"; got != want {
		t.Fatalf("unresolved: %s, want %s", got, want)
	}
	if _, err := tb.SetAnswer("db.test:5432", []resolve.Server{srv("10.0.0.7:5432", 0, false), srv("127.0.0.1:9002", 0, false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.SetAnswer("_pg._tcp.db.test", []resolve.Server{srv("10.0.0.8:5433", 3, false), srv("10.0.0.7:5432", 1, false), srv("10.0.0.9:5433", 1, true)}); err != nil {
		t.Fatal(err)
	}
	want := "127.0.0.1:9001 w1 config/config, db.test:5432 → 10.0.0.7:5432 w1 dns/config, " +
		"_pg._tcp.db.test → 10.0.0.8:5433 w3 dns/dns max100, _pg._tcp.db.test → 10.0.0.9:5433 w1 dns/dns backup max100, 127.0.0.1:9002 w1 config/config"
	if got := full(tb); got != want {
		t.Fatalf("resolved:\n got %s\nwant %s", got, want)
	}
	// The same answer again publishes nothing.
	before := tb.region.Rule(0).Members.Load()
	if changed, err := tb.SetAnswer("db.test:5432", []resolve.Server{srv("10.0.0.7:5432", 0, false), srv("127.0.0.1:9002", 0, false)}); changed || err != nil {
		t.Fatalf("the same answer again: changed %t, %v", changed, err)
	}
	if after := tb.region.Rule(0).Members.Load(); after != before {
		t.Fatalf("an unchanged answer moved Members %d → %d", before, after)
	}
	// An entry not in the config (a late answer after a reload) is ignored.
	if _, err := tb.SetAnswer("gone.test:1", []resolve.Server{srv("10.0.0.1:1", 0, false)}); err != nil || len(tb.State().Answers) != 2 {
		t.Fatalf("answer of an unknown entry: %v, answers %+v", err, tb.State().Answers)
	}
}

// TestAnswerLeavesLikeDel: a server its name no longer yields takes no new
// connection and is listed as gone while it has sessions.
func TestAnswerLeavesLikeDel(t *testing.T) {
	tb, _ := table(t, named)
	if _, err := tb.SetAnswer("db.test:5432", []resolve.Server{srv("10.0.0.7:5432", 0, false), srv("10.0.0.8:5432", 0, false)}); err != nil {
		t.Fatal(err)
	}
	es, _ := tb.Entries()
	old := es[0][1]
	if old.Server.Address != "10.0.0.7:5432" {
		t.Fatalf("second server is %s", old.Server.Address)
	}
	tb.region.Server(old.Slot).Active.Store(1) // a session still open
	if _, err := tb.SetAnswer("db.test:5432", []resolve.Server{srv("10.0.0.8:5432", 0, false)}); err != nil {
		t.Fatal(err)
	}
	es, gone := tb.Entries()
	if len(es[0]) != 3 || len(gone) != 1 || gone[0].Slot != old.Slot || tb.region.Server(old.Slot).Member.Load() != 0 {
		t.Fatalf("after the address left: servers %s, gone %+v, member %d", full(tb), gone, tb.region.Server(old.Slot).Member.Load())
	}
	// Its hold over: nothing is left of the entry.
	if _, err := tb.SetAnswer("db.test:5432", nil); err != nil {
		t.Fatal(err)
	}
	if got, want := full(tb), "127.0.0.1:9001 w1 config/config, 127.0.0.1:9002 w1 config/config"; got != want || len(tb.State().Answers) != 0 {
		t.Fatalf("after the answer was dropped: %s (answers %+v)", got, tb.State().Answers)
	}
}

// TestAnswersAcrossReloadAndRestart: a reload keeps the answers of the
// entries it keeps and drops the others; the state file carries them to
// the next start; runtime changes to a resolved server stay.
func TestAnswersAcrossReloadAndRestart(t *testing.T) {
	tb, _ := table(t, named)
	path := filepath.Join(t.TempDir(), "state.json")
	if err := tb.SetStateFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.SetAnswer("db.test:5432", []resolve.Server{srv("10.0.0.7:5432", 0, false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.SetAnswer("_pg._tcp.db.test", []resolve.Server{srv("10.0.0.8:5433", 2, false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.SetWeight("db", mustAddr("10.0.0.7:5432"), 9); err != nil {
		t.Fatal(err)
	}
	cfg2, err := conf.ParseTOML("t.toml", []byte(strings.Replace(named, `{ srv = "_pg._tcp.db.test", max_connections = 100 },`, "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Publish(cfg2, []int{0}); err != nil {
		t.Fatal(err)
	}
	if as := tb.State().Answers; len(as) != 2 {
		t.Fatalf("a publish dropped answers before the config serves: %+v", as)
	}
	if err := tb.PruneAnswers(); err != nil {
		t.Fatal(err)
	}
	want := "127.0.0.1:9001 w1 config/config, db.test:5432 → 10.0.0.7:5432 w9 dns/admin, 127.0.0.1:9002 w1 config/config"
	if got := full(tb); got != want {
		t.Fatalf("after the reload:\n got %s\nwant %s", got, want)
	}
	st, err := LoadState(path)
	if err != nil || len(st.Answers) != 1 || st.Answers[0].Entry != "db.test:5432" {
		t.Fatalf("state file answers %+v, %v", st.Answers, err)
	}
	// A new master (restart) starts from the file: the address is back at once.
	tb2 := New(tb.region, st, false)
	if err := tb2.Publish(cfg2, []int{0}); err != nil {
		t.Fatal(err)
	}
	if got := full(tb2); got != want {
		t.Fatalf("after the restart:\n got %s\nwant %s", got, want)
	}
	if as := tb2.State().Answers; len(as) != 1 {
		t.Fatalf("answers of entries the config dropped came back: %+v", as)
	}
}
