package master

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"g6/ipc"
)

// askAll sends one request to every live worker at once and decodes each
// answer's body as T. It returns the answers that came (in worker order)
// and, for the workers that did not answer in time or answered nonsense,
// "worker N (pid P): why".
func askAll[T any](m *Master, typ string, body any, timeout time.Duration) ([]T, []string) {
	ws := m.liveWorkers()
	got := make([]T, len(ws))
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go askOne(w, typ, body, timeout, &got[i], &errs[i], &wg)
	}
	wg.Wait()
	var out []T
	var missing []string
	for i := range ws {
		if errs[i] != nil {
			missing = append(missing, strings.TrimPrefix(errs[i].Error(), "master: "))
			continue
		}
		out = append(out, got[i])
	}
	return out, missing
}

// askOne is one worker's part of askAll.
func askOne[T any](w *workerProc, typ string, body any, timeout time.Duration, out *T, errOut *error, wg *sync.WaitGroup) {
	defer wg.Done()
	msg, err := w.request(typ, body, timeout)
	if err == nil {
		if *out, err = ipc.DecodeBody[T](msg); err != nil {
			err = fmt.Errorf("master: worker %d (pid %d): %w", w.slot, w.pid, err)
		}
	}
	*errOut = err
}
