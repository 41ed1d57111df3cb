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
	busy, total [2]int64
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
			if j != 3 && j != 4 {
				c.busy[i] += v
			}
		}
	}
	return c
}

// busyPct is how busy core i was between two samples, in percent.
func busyPct(a, b coreTimes, i int) float64 {
	if d := b.total[i] - a.total[i]; d > 0 {
		return float64(b.busy[i]-a.busy[i]) / float64(d) * 100
	}
	return 0
}
