package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"g6/conf"
)

// cmdAdmin sends one admin command and prints the reply; exit 1 on an
// error: reply or when the master cannot be reached.
func cmdAdmin(args []string) int {
	fs := newFlags("admin")
	addr := fs.String("a", "", "admin address (default: the first admin listen address of -c FILE, else 127.0.0.1:8600)")
	cfgPath := fs.String("c", "", "config file to take the admin address from")
	timeout := fs.Duration("t", 10*time.Second, "timeout")
	if fs.Parse(args) != nil {
		return 1
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "g6 admin: no command (try: g6 admin help)")
		return 1
	}
	if *addr == "" {
		*addr = "127.0.0.1:8600"
		if *cfgPath != "" {
			cfg, err := conf.Load(*cfgPath)
			if err != nil {
				printConfErr(os.Stderr, err)
				return 1
			}
			if cfg.Admin == nil || len(cfg.Admin.Listen) == 0 {
				fmt.Fprintf(os.Stderr, "g6 admin: %s has no [admin] listen address\n", *cfgPath)
				return 1
			}
			*addr = cfg.Admin.Listen[0].Address
		}
	}
	c, err := net.DialTimeout("tcp", *addr, *timeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "g6 admin: %v\n", err)
		return 1
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(*timeout))
	if _, err := fmt.Fprintf(c, "%s\n", strings.Join(fs.Args(), " ")); err != nil {
		fmt.Fprintf(os.Stderr, "g6 admin: %v\n", err)
		return 1
	}
	r := bufio.NewReader(c)
	code := 0
	for first := true; ; first = false {
		line, err := r.ReadString('\n')
		if err != nil {
			fmt.Fprintf(os.Stderr, "g6 admin: %s: connection closed before the reply ended\n", *addr)
			return 1
		}
		if line == "\n" {
			return code
		}
		if first && strings.HasPrefix(line, "error:") {
			code = 1
		}
		fmt.Print(line)
	}
}
