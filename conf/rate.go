package conf

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rate is a connection rate limit, "20/s" (also /m, /h): at most N new
// connections per Per. The zero value is no limit. It is enforced as a
// token bucket (GCRA, shared.Rate) whose burst is a tenth of a second's
// worth, at least 1 (Burst).
type Rate struct {
	N   int64    `json:",omitempty"`
	Per Duration `json:",omitempty"`
}

// On reports whether the rate limits anything.
func (r Rate) On() bool { return r.N > 0 }

func (r Rate) String() string {
	unit := map[Duration]string{Duration(time.Second): "s", Duration(time.Minute): "m", Duration(time.Hour): "h"}[r.Per]
	return strconv.FormatInt(r.N, 10) + "/" + unit
}

// Interval is the time one connection's token takes to come back, in ns.
func (r Rate) Interval() int64 { return int64(r.Per) / r.N }

// Burst is how many connections may come at once: a tenth of a second's
// worth of the rate, at least 1.
func (r Rate) Burst() int64 {
	return max(1, int64(float64(r.N)*float64(time.Second)/float64(r.Per)/10))
}

// maxRate keeps Interval at a nanosecond or more.
const maxRate = 1_000_000_000

// UnmarshalTOML reads "N/s", "N/m" or "N/h".
func (r *Rate) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("a rate is a string like \"20/s\", not %T", v)
	}
	n, unit, ok := strings.Cut(s, "/")
	per := map[string]Duration{"s": Duration(time.Second), "m": Duration(time.Minute), "h": Duration(time.Hour)}[unit]
	count, err := strconv.ParseInt(n, 10, 64)
	switch {
	case !ok || per == 0 || err != nil || n == "" || n[0] == '+' || count < 0:
		return fmt.Errorf("invalid rate %q (want N/s, N/m or N/h)", s)
	case count > maxRate:
		return fmt.Errorf("rate %q is too large (max %d per unit)", s, maxRate)
	}
	*r = Rate{N: count, Per: per}
	if count == 0 {
		*r = Rate{} // "0/s" cancels an inherited limit
	}
	return nil
}
