package main

import (
	"os"
	"strconv"
	"strings"
)

// coreTimes is one sample of /proc/stat's per-CPU busy and total ticks, so
// a measurement can say which core was the bottleneck (the load generator's
// or the proxy's and backends').
type coreTimes struct {
	busy, total, steal [2]int64
}

func sampleCores() coreTimes {
	var c coreTimes
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return c
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || (f[0] != "cpu0" && f[0] != "cpu1") {
			continue
		}
		i := int(f[0][3] - '0')
		for j, s := range f[1:9] { // user nice system idle iowait irq softirq steal
			v, _ := strconv.ParseInt(s, 10, 64)
			c.total[i] += v
			switch j {
			case 3, 4:
			case 7:
				c.steal[i] += v // time the hypervisor gave to other guests
			default:
				c.busy[i] += v
			}
		}
	}
	return c
}

// stealPct is the share of both cores' time taken by the hypervisor for
// other guests between two samples, in percent: what makes rounds differ.
func stealPct(a, b coreTimes) float64 {
	st := b.steal[0] + b.steal[1] - a.steal[0] - a.steal[1]
	if d := b.total[0] + b.total[1] - a.total[0] - a.total[1]; d > 0 {
		return float64(st) / float64(d) * 100
	}
	return 0
}

// busyPct is how busy core i was between two samples, in percent (stolen
// time not counted).
func busyPct(a, b coreTimes, i int) float64 {
	if d := b.total[i] - a.total[i]; d > 0 {
		return float64(b.busy[i]-a.busy[i]) / float64(d) * 100
	}
	return 0
}
