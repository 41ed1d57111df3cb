// Command loadgen opens TCP connections to a g6 (or any) address and reports
// how many succeeded: a quick check that a deployment answers under load.
//
//	loadgen -addr 127.0.0.1:8081 -n 1000 -c 20 -expect "hello from"
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"g6/tools/load"
)

func main() {
	var o load.Options
	flag.StringVar(&o.Addr, "addr", "127.0.0.1:8081", "address to connect to")
	flag.IntVar(&o.Count, "n", 1000, "connections in all")
	flag.IntVar(&o.Concurrency, "c", 10, "connections at once")
	flag.IntVar(&o.Rate, "rate", 0, "new connections per second (0 = unlimited)")
	flag.DurationVar(&o.Duration, "d", 30*time.Second, "stop after this long")
	flag.StringVar(&o.Expect, "expect", "", "prefix the server's first line must have")
	flag.StringVar(&o.Send, "send", "", "bytes to send first (\\n allowed)")
	flag.DurationVar(&o.Timeout, "timeout", 5*time.Second, "per-connection timeout")
	flag.Parse()
	res := load.Run(context.Background(), o)
	fmt.Println(res)
	for a, n := range res.Answers {
		fmt.Printf("  %6d  %s\n", n, a)
	}
	if res.Failed > 0 {
		os.Exit(1)
	}
}
