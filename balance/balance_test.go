package balance

import (
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
)

// fakeView is a literal set of servers for table tests.
type fakeView struct {
	active  []int64
	weight  []int
	rt      []int64
	down    map[int]bool
	servers []string
}

func (f *fakeView) Len() int           { return len(f.active) }
func (f *fakeView) Usable(i int) bool  { return !f.down[i] }
func (f *fakeView) Active(i int) int64 { return f.active[i] }
func (f *fakeView) Weight(i int) int {
	if f.weight == nil {
		return 1
	}
	return f.weight[i]
}
func (f *fakeView) RT(i int) int64 {
	if f.rt == nil {
		return 0
	}
	return f.rt[i]
}
func (f *fakeView) Key(i int) uint64 { return KeyOf(f.servers[i]) }

func view(n int) *fakeView {
	v := &fakeView{active: make([]int64, n)}
	for i := 0; i < n; i++ {
		v.servers = append(v.servers, fmt.Sprintf("10.0.0.%d:80", i+1))
	}
	return v
}

// first returns the first usable server of an order, as the worker does.
func first(v *fakeView, order []int) int {
	for _, i := range order {
		if v.Usable(i) {
			return i
		}
	}
	return -1
}

func TestAlgorithms(t *testing.T) {
	tests := []struct {
		alg   string
		setup func(v *fakeView)
		picks int
		want  []int // picks per server
	}{
		{"RR", nil, 30, []int{10, 10, 10}},
		{"RR", func(v *fakeView) { v.weight = []int{1, 2, 3} }, 60, []int{10, 20, 30}},
		{"RR", func(v *fakeView) { v.weight = []int{100, 100} }, 2, []int{1, 1}}, // smooth: not 100 turns each in a run
		{"RR", func(v *fakeView) { v.weight = []int{50, 100, 50} }, 4, []int{1, 2, 1}},
		{"MS", nil, 9, []int{9, 0, 0}},
		{"MS", func(v *fakeView) { v.down = map[int]bool{0: true} }, 9, []int{0, 9, 0}},
		{"LC", func(v *fakeView) { v.active = []int64{5, 0, 5} }, 1, []int{0, 1, 0}},
		{"RT", func(v *fakeView) { v.rt = []int64{300, 150, 900} }, 6, []int{0, 6, 0}},
		{"RT", func(v *fakeView) { v.rt = []int64{300, 150, 900}; v.down = map[int]bool{1: true} }, 6, []int{6, 0, 0}},
		// weight 0 takes nothing (the worker's Usable skips it as well).
		{"RR", func(v *fakeView) { v.weight = []int{1, 0, 1} }, 10, []int{5, 0, 5}},
		{"RR", func(v *fakeView) { v.weight = []int{0, 0, 0}; v.down = map[int]bool{0: true, 1: true, 2: true} }, 3, []int{0, 0, 0}},
		// P2: of any two drawn, the idle one wins; the loaded one only leads when both drawn are loaded.
		{"P2", func(v *fakeView) { v.active = []int64{9, 0} }, 20, []int{0, 20}},
		{"P2", func(v *fakeView) { v.active = []int64{3, 1}; v.weight = []int{4, 1} }, 20, []int{20, 0}}, // per weight 0.75 < 1
		{"P2", func(v *fakeView) { v.active = []int64{9, 9, 9}; v.down = map[int]bool{0: true, 2: true} }, 5, []int{0, 5, 0}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v", tt.alg, tt.want), func(t *testing.T) {
			v := view(len(tt.want))
			if tt.picks == 3 && tt.want[0] == 0 && tt.want[1] == 0 { // all down: no pick at all
				sel, _ := New(tt.alg, new(atomic.Uint64), 0)
				tt.setup(v)
				if o := sel.Order(v, nil, nil); len(o) != 3 || first(v, o) != -1 {
					t.Fatalf("order %v", o)
				}
				return
			}
			if tt.setup != nil {
				tt.setup(v)
			}
			sel, err := New(tt.alg, new(atomic.Uint64), 0)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]int, len(tt.want))
			var dst []int
			for i := 0; i < tt.picks; i++ {
				dst = sel.Order(v, []byte("127.0.0.1"), dst)
				if len(dst) != v.Len() {
					t.Fatalf("order %v does not list every server", dst)
				}
				got[first(v, dst)]++
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("picks %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLeastConnsShares: holding connections, LC spreads 12 over 3 evenly.
func TestLeastConnsShares(t *testing.T) {
	v := view(3)
	sel, _ := New("LC", new(atomic.Uint64), 0)
	var dst []int
	for i := 0; i < 12; i++ {
		dst = sel.Order(v, nil, dst)
		v.active[first(v, dst)]++
	}
	if !reflect.DeepEqual(v.active, []int64{4, 4, 4}) {
		t.Fatalf("held %v, want 4 each", v.active)
	}
}

func TestRandomSpreads(t *testing.T) {
	v := view(4)
	sel, _ := New("RD", nil, 0)
	got := make([]int, 4)
	var dst []int
	for i := 0; i < 4000; i++ {
		dst = sel.Order(v, nil, dst)
		got[first(v, dst)]++
	}
	for i, n := range got {
		if n < 800 || n > 1200 {
			t.Fatalf("server %d got %d of 4000 (all: %v)", i, n, got)
		}
	}
}

// TestHashConsistent: each IP sticks to a server; removing a server moves
// only the clients it had; a down server's clients go to one other server.
func TestHashConsistent(t *testing.T) {
	v := view(5)
	sel, _ := New("HS", nil, 0)
	before := map[string]int{}
	var dst []int
	for i := 0; i < 500; i++ {
		ip := fmt.Sprintf("192.168.%d.%d", i/250, i%250)
		dst = sel.Order(v, []byte(ip), dst)
		before[ip] = first(v, dst)
		if again := first(v, sel.Order(v, []byte(ip), dst)); again != before[ip] {
			t.Fatalf("%s moved from %d to %d", ip, before[ip], again)
		}
	}
	counts := make([]int, 5)
	for _, s := range before {
		counts[s]++
	}
	for i, n := range counts {
		if n < 50 {
			t.Fatalf("server %d has only %d of 500 clients: %v", i, n, counts)
		}
	}
	v.down = map[int]bool{2: true}
	for ip, s := range before {
		now := first(v, sel.Order(v, []byte(ip), dst))
		if s != 2 && now != s {
			t.Fatalf("%s moved from %d to %d though its server is up", ip, s, now)
		}
		if s == 2 && now == 2 {
			t.Fatalf("%s still on the down server", ip)
		}
	}
}

func BenchmarkOrder(b *testing.B) {
	for _, alg := range []string{"MS", "RR", "LC", "RT", "RD", "HS", "HS-bounded", "P2"} {
		b.Run(alg, func(b *testing.B) {
			v := view(5)
			factor := 0.0
			if alg == "HS-bounded" {
				alg, factor = "HS", 1.25
			}
			sel, _ := New(alg, new(atomic.Uint64), factor)
			dst := make([]int, 0, 8)
			ip := []byte("192.168.1.77")
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				dst = sel.Order(v, ip, dst)
			}
		})
	}
}

// TestHashBounded: with a factor, a client whose server holds more than
// factor × the mean load per weight goes to its next server; without it,
// it stays.
func TestHashBounded(t *testing.T) {
	v := view(3)
	ip := []byte("192.0.2.7")
	plain, _ := New("HS", nil, 0)
	home := plain.Order(v, ip, nil)[0]
	v.active[home] = 30 // mean per weight (30+1)/3 ≈ 10.3; 30 > 1.25 × 10.3
	if got := plain.Order(v, ip, nil)[0]; got != home {
		t.Fatalf("unbounded HS moved the client from %d to %d", home, got)
	}
	bounded, _ := New("HS", nil, 1.25)
	order := bounded.Order(v, ip, nil)
	if order[0] == home || order[len(order)-1] != home {
		t.Fatalf("bounded order %v keeps the overloaded server %d in front", order, home)
	}
	v.active[home] = 12 // 12 < 1.25 × 43/3 ≈ 17.9 after the others' load
	v.active[(home+1)%3], v.active[(home+2)%3] = 15, 15
	if got := bounded.Order(v, ip, nil)[0]; got != home {
		t.Fatalf("bounded HS moved the client off a server within its bound: %d", got)
	}
}
