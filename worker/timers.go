package worker

// timerHeap is a min-heap of deadlines. Entries are lazy: a session that
// was active since its entry was pushed is pushed again with its new
// deadline when the old entry comes up, so activity costs no heap work.
type timerHeap []timerEntry

// timed is what a deadline is for: a kind of session. onTimer gets the
// generation the entry was pushed for, so an entry of a recycled session
// is ignored.
type timed interface {
	onTimer(w *Worker, gen uint32)
}

type timerEntry struct {
	at  int64
	t   timed
	gen uint32
}

func (h *timerHeap) push(e timerEntry) {
	*h = append(*h, e)
	a := *h
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if a[p].at <= a[i].at {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *timerHeap) pop() timerEntry {
	a := *h
	top := a[0]
	last := len(a) - 1
	a[0] = a[last]
	a[last] = timerEntry{}
	a = a[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(a) && a[l].at < a[m].at {
			m = l
		}
		if r < len(a) && a[r].at < a[m].at {
			m = r
		}
		if m == i {
			break
		}
		a[m], a[i] = a[i], a[m]
		i = m
	}
	*h = a
	return top
}

func (h timerHeap) peek() (int64, bool) {
	if len(h) == 0 {
		return 0, false
	}
	return h[0].at, true
}
