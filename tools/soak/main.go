// Command soak runs g6 under load and faults for a while and says whether
// anything was lost: checked short sessions at a steady rate and long
// streams (sha256 both ways, fast and slow readers) through a real master
// with its access log on, while a chaos loop sends HUP, USR2 and kill -9 to
// random workers. A failure is explained when a worker was killed while
// the session was open; anything else is a bug. The last part of the run
// (-full) is the full-rate phase: short sessions as fast as the machine
// takes them, and USR2 and HUP every half second with no kills, where
// every failure is a bug and no server may be isolated (the servers never
// go down). At the end every connection count in the shared region must
// be back to zero.
//
// Everything runs on 127.0.0.1 and stops by itself after -d.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	g6 := flag.String("g6", "bin/g6", "g6 binary")
	backend := flag.String("backend", "bin/backend", "tools/backend binary")
	d := flag.Duration("d", 3*time.Minute, "how long to run")
	rate := flag.Int("rate", 300, "short sessions per second")
	streams := flag.Int("streams", 4, "stream loops running at once (half of them slow readers)")
	every := flag.Duration("chaos", 1500*time.Millisecond, "time between chaos actions")
	workers := flag.Int("w", 2, "g6 workers")
	full := flag.Duration("full", 0, "length of the full-rate phase at the end (default: a third of -d)")
	flag.Parse()
	if *full == 0 {
		*full = *d / 3
	}
	s, err := setUp(*g6, *backend, *workers)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	defer s.tearDown()
	rep := s.run(*d, *full, *rate, *streams, *every)
	fmt.Println(rep.line())
	if !rep.ok() {
		fmt.Fprintf(os.Stderr, "soak: FAILED; master log kept in %s\n", s.dir)
		s.keep = true
		os.Exit(1)
	}
}
