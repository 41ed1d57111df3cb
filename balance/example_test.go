package balance_test

import (
	"fmt"
	"sync/atomic"

	"g6/balance"
)

// servers is a rule's servers as a selector sees them.
type servers struct {
	active, weight []int
}

func (s servers) Len() int           { return len(s.active) }
func (s servers) Active(i int) int64 { return int64(s.active[i]) }
func (s servers) Weight(i int) int   { return s.weight[i] }
func (s servers) RT(int) int64       { return 0 }
func (s servers) Key(i int) uint64   { return uint64(i) }

// What algorithm = "..." does with three servers: MS always tries them in
// the config's order, RR turns through them, LC puts the server with the
// fewest connections per weight first.
func Example() {
	v := servers{active: []int{4, 1, 2}, weight: []int{1, 1, 1}}
	var cursor atomic.Uint64
	for _, alg := range []string{"MS", "RR", "LC"} {
		sel, _ := balance.New(alg, &cursor, 0)
		var firsts []int
		for range 3 {
			firsts = append(firsts, sel.Order(v, []byte("10.0.0.1"), nil)[0])
		}
		fmt.Println(alg, firsts)
	}
	// Output:
	// MS [0 0 0]
	// RR [0 1 2]
	// LC [1 1 1]
}
