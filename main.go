// Command g6 is a layer-4 TCP load balancer and bridge: a master process and
// one epoll worker per core. See README.md.
package main

import (
	"fmt"
	"os"

	"g6/master"

	"golang.org/x/sys/unix"
)

const usage = `usage:
  g6 master -c FILE [-w N] [--log-level L] [--log-file F] [--pid-file F] [--daemon]
  g6 master --etcd URL --prefix P [--node N] [-w N] ...   (the config comes from the fleet)
  g6 check -c FILE [--resolve]
  g6 push -c FILE --etcd URL --prefix P
  g6 convert [-o OUT] FILE
  g6 admin [-a ADDR | -c FILE] COMMAND...
  g6 version
`

func main() {
	master.Version = version
	raiseFileLimit()
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(1)
	}
	cmds := map[string]func([]string) int{
		"master":  cmdMaster,
		"worker":  cmdWorker,
		"check":   cmdCheck,
		"push":    cmdPush,
		"convert": cmdConvert,
		"admin":   cmdAdmin,
		"version": cmdVersion,
	}
	run, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "g6: unknown command %q\n%s", os.Args[1], usage)
		os.Exit(1)
	}
	os.Exit(run(os.Args[2:]))
}

// raiseFileLimit lifts the soft open-file limit to the hard one: every
// proxied connection costs two fds.
func raiseFileLimit() {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
	}
}
