package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"g6/conf"
	"g6/fleet"
	"g6/master"
	"g6/resolve"
	"g6/worker"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("g6 "+name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

func cmdMaster(args []string) int {
	fs := newFlags("master")
	o := master.Options{Args: args}
	var daemon bool
	fs.StringVar(&o.ConfigPath, "c", "", "config file (g6.toml or legacy G6.conf)")
	fs.StringVar(&o.ConfigPath, "config", "", "same as -c")
	fs.IntVar(&o.Workers, "w", 0, "workers (0 = config, then one per CPU)")
	fs.IntVar(&o.Workers, "workers", 0, "same as -w")
	fs.StringVar(&o.LogLevel, "log-level", "", "debug, info, warn, error (overrides the config)")
	fs.StringVar(&o.LogFile, "log-file", "", "log file (overrides the config; default stderr)")
	fs.StringVar(&o.PidFile, "pid-file", "", "write the master's pid here")
	fs.BoolVar(&daemon, "daemon", false, "detach from the terminal")
	etcd := fs.String("etcd", "", "etcd endpoints (comma-separated): take the config from the fleet's store")
	fs.StringVar(&o.Prefix, "prefix", "", "with --etcd: the fleet's key prefix")
	fs.StringVar(&o.Node, "node", "", "with --etcd: this node's name (default: the config's, else the hostname)")
	if fs.Parse(args) != nil {
		return 1
	}
	if *etcd != "" {
		o.Etcd = strings.Split(*etcd, ",")
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintln(os.Stderr, "g6 master: takes no arguments besides its flags")
		return 1
	case o.ConfigPath == "" && len(o.Etcd) == 0:
		fmt.Fprintln(os.Stderr, "g6 master: -c FILE, or --etcd URL --prefix P, is required")
		return 1
	case o.ConfigPath != "" && len(o.Etcd) > 0:
		fmt.Fprintln(os.Stderr, "g6 master: -c and --etcd exclude each other (the config comes from one place)")
		return 1
	case len(o.Etcd) > 0 && o.Prefix == "":
		fmt.Fprintln(os.Stderr, "g6 master: --etcd needs --prefix")
		return 1
	}
	if o.Workers < 0 || o.Workers > conf.MaxWorkers {
		fmt.Fprintf(os.Stderr, "g6 master: -w must be 0-%d\n", conf.MaxWorkers)
		return 1
	}
	if daemon {
		return daemonize(args)
	}
	return master.Run(o)
}

// cmdPush is `g6 push -c FILE --etcd URL --prefix P`: validate a config
// and store it as the fleet's.
func cmdPush(args []string) int {
	fs := newFlags("push")
	path := fs.String("c", "", "config file")
	etcd := fs.String("etcd", "", "etcd endpoints (comma-separated)")
	prefix := fs.String("prefix", "", "the fleet's key prefix")
	if fs.Parse(args) != nil {
		return 1
	}
	if *path == "" || *etcd == "" || *prefix == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: g6 push -c FILE --etcd URL --prefix P")
		return 1
	}
	src, err := os.ReadFile(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "g6 push:", err)
		return 1
	}
	if _, err := conf.Parse(*path, src); err != nil {
		printConfErr(os.Stderr, err)
		fmt.Fprintln(os.Stderr, "g6 push: not pushed")
		return 1
	}
	rev, err := fleet.PushConfig(strings.Split(*etcd, ","), strings.TrimSuffix(*prefix, "/"), src)
	if err != nil {
		fmt.Fprintln(os.Stderr, "g6 push:", err)
		return 1
	}
	fmt.Printf("%s pushed to %s/config (revision %d)\n", *path, strings.TrimSuffix(*prefix, "/"), rev)
	return 0
}

func cmdWorker(args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(os.Stderr, "g6 worker: internal command, started by the master")
		return 1
	}
	return worker.Main()
}

func cmdCheck(args []string) int {
	fs := newFlags("check")
	path := fs.String("c", "", "config file")
	lookup := fs.Bool("resolve", false, "also resolve every server name once and print what it yields")
	if fs.Parse(args) != nil {
		return 1
	}
	if *path == "" && fs.NArg() == 1 {
		*path = fs.Arg(0)
	}
	if *path == "" {
		fmt.Fprintln(os.Stderr, "g6 check: -c FILE is required")
		return 1
	}
	cfg, err := conf.Load(*path)
	if err != nil {
		printConfErr(os.Stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(os.Stderr, w)
	}
	fmt.Printf("%s: ok (%d rules)\n", *path, len(cfg.Rules))
	if *lookup && !resolveOnce(cfg) {
		return 1
	}
	return 0
}

// resolveOnce looks every name entry of cfg up once, as the master would,
// and prints what each yields; false if any did not resolve.
func resolveOnce(cfg *conf.Config) bool {
	opts := resolve.OptionsOf(cfg)
	r, err := opts.Resolver()
	if err != nil {
		fmt.Fprintln(os.Stderr, "g6 check:", err)
		return false
	}
	ok := true
	for _, n := range cfg.NameEntries() {
		ctx, cancel := context.WithTimeout(context.Background(), opts.Interval)
		addrs, err := r.Lookup(ctx, n)
		cancel()
		var partial *resolve.PartialError
		note := ""
		if errors.As(err, &partial) {
			err, note = nil, " (but "+partial.Error()+")"
		}
		if err == nil && len(addrs) == 0 {
			err = errors.New("no address")
		}
		if err != nil {
			ok = false
			fmt.Printf("%s: does not resolve: %v\n", n.Entry, err)
			continue
		}
		var out []string
		for _, s := range resolve.Servers(addrs, n.SRV) {
			x := s.Addr.String()
			if n.SRV {
				x += fmt.Sprintf(" weight %d", s.Weight)
				if s.Backup {
					x += " backup"
				}
			}
			out = append(out, x)
		}
		fmt.Printf("%s: %s%s\n", n.Entry, strings.Join(out, ", "), note)
	}
	return ok
}

func printConfErr(w io.Writer, err error) {
	var list conf.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(w, e)
		}
		return
	}
	fmt.Fprintln(w, "g6:", err)
}

func cmdConvert(args []string) int {
	fs := newFlags("convert")
	out := fs.String("o", "", "write the TOML here (default stdout)")
	if fs.Parse(args) != nil {
		return 1
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: g6 convert [-o OUT] G6.conf")
		return 1
	}
	path := fs.Arg(0)
	src, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "g6 convert:", err)
		return 1
	}
	cfg, err := conf.ParseLegacy(path, src)
	if err != nil {
		printConfErr(os.Stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(os.Stderr, w)
	}
	text := cfg.TOML(filepath.Base(path))
	if *out == "" {
		os.Stdout.Write(text)
		return 0
	}
	if err := os.WriteFile(*out, text, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "g6 convert:", err)
		return 1
	}
	return 0
}

func cmdVersion([]string) int {
	fmt.Printf("g6 %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.time" || s.Key == "vcs.modified" {
				fmt.Printf("%s=%s\n", s.Key, s.Value)
			}
		}
	}
	return 0
}
