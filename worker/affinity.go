package worker

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// pinToSlot pins this process (its one locked thread does all the work) to
// the slot-th CPU of the mask it inherited, so `taskset` on the master is
// respected and worker slots spread over the allowed CPUs.
func pinToSlot(slot int) error {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		return fmt.Errorf("worker: affinity: %w", err)
	}
	n := allowed.Count()
	if n == 0 {
		return fmt.Errorf("worker: affinity: empty CPU mask")
	}
	want := slot % n
	for cpu := 0; cpu < 1024; cpu++ {
		if !allowed.IsSet(cpu) {
			continue
		}
		if want == 0 {
			var set unix.CPUSet
			set.Set(cpu)
			return unix.SchedSetaffinity(0, &set)
		}
		want--
	}
	return fmt.Errorf("worker: affinity: no CPU for slot %d", slot)
}
