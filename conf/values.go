package conf

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Duration is a time span written either as Go syntax ("90s", "2m") or as a
// bare integer meaning seconds.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalTOML implements toml.Unmarshaler.
func (d *Duration) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return fmt.Errorf("duration %d is negative", x)
		}
		if x > math.MaxInt64/int64(time.Second) {
			return fmt.Errorf("duration %d seconds is too large", x)
		}
		*d = Duration(time.Duration(x) * time.Second)
		return nil
	case string:
		p, err := parseDuration(x)
		if err != nil {
			return err
		}
		*d = p
		return nil
	}
	return fmt.Errorf("duration must be a string like \"90s\" or an integer of seconds, not %T", v)
}

func parseDuration(s string) (Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		var d Duration
		return d, d.UnmarshalTOML(n)
	}
	p, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want Go syntax like \"90s\", \"2m\")", s)
	}
	if p < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return Duration(p), nil
}

// MarshalJSON keeps the resolved config readable when it travels to workers.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(int64(d)) }

// UnmarshalJSON is the inverse of MarshalJSON.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*d = Duration(n)
	return nil
}

// Count is a non-negative quantity; written as an integer, or as a string with
// G6's suffixes "k" (×1000) and "m" (×1,000,000).
type Count int64

// UnmarshalTOML implements toml.Unmarshaler.
func (c *Count) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return fmt.Errorf("count %d is negative", x)
		}
		*c = Count(x)
		return nil
	case string:
		n, err := parseCount(x)
		if err != nil {
			return err
		}
		*c = n
		return nil
	}
	return fmt.Errorf("count must be an integer (or a string like \"2k\"), not %T", v)
}

// maxCount keeps counts inside what the shared region stores (int32 slots).
const maxCount = math.MaxInt32

// G6's unit suffixes: "m" is a million for counts but minutes for times.
var (
	countUnits = map[byte]int64{'k': 1000, 'K': 1000, 'm': 1000000, 'M': 1000000}
	timeUnits  = map[byte]int64{'s': 1, 'S': 1, 'm': 60, 'M': 60, 'h': 3600, 'H': 3600}
)

// splitUnit cuts an optional one-character unit off s.
func splitUnit(s string, units map[byte]int64) (string, int64) {
	if s != "" {
		if m, ok := units[s[len(s)-1]]; ok {
			return s[:len(s)-1], m
		}
	}
	return s, 1
}

func parseCount(s string) (Count, error) {
	body, mult := splitUnit(s, countUnits)
	n, err := strconv.ParseInt(body, 10, 64)
	if err != nil || n < 0 || body == "" || body[0] == '+' {
		return 0, fmt.Errorf("invalid count %q (want digits with an optional k or m suffix)", s)
	}
	if n > maxCount/mult {
		return 0, fmt.Errorf("count %q is too large (max %d)", s, maxCount)
	}
	return Count(n * mult), nil
}
