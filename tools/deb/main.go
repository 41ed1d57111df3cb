// Command deb builds g6's Debian package with nfpm (a Go library: no
// external packaging tool): /usr/bin/g6, the systemd unit, /etc/g6/g6.toml
// as a conffile (the annotated example, which listens on loopback only), a
// man page g6(1) made from the binary's own help, and bash completion.
//
//	go run ./tools/deb -bin bin/deb/g6 -o bin/g6.deb
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

func main() {
	bin := flag.String("bin", "bin/g6", "the g6 binary to package")
	out := flag.String("o", "bin/g6.deb", "the package to write")
	root := flag.String("root", ".", "the source tree (systemd/, g6.example.toml, README.md)")
	flag.Parse()
	if err := build(*bin, *out, *root); err != nil {
		log.Fatalf("deb: %v", err)
	}
}

func build(bin, out, root string) error {
	work, err := os.MkdirTemp("", "g6-deb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	version, err := versionOf(bin)
	if err != nil {
		return err
	}
	man, err := manPage(bin, version)
	if err != nil {
		return err
	}
	unit, err := os.ReadFile(filepath.Join(root, "systemd/g6.service"))
	if err != nil {
		return err
	}
	// The unit is written for a hand install in /usr/local/bin.
	unit = bytes.ReplaceAll(unit, []byte("/usr/local/bin/g6"), []byte("/usr/bin/g6"))
	generated := map[string][]byte{
		"g6.1.gz":    man,
		"g6.service": unit,
		"completion": []byte(completion),
		"postinst":   []byte(postinst),
		"prerm":      []byte(prerm),
		"postrm":     []byte(postrm),
	}
	for name, b := range generated {
		if err := os.WriteFile(filepath.Join(work, name), b, 0o644); err != nil {
			return err
		}
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:        "g6",
		Arch:        "amd64",
		Platform:    "linux",
		Version:     version,
		Section:     "net",
		Priority:    "optional",
		Maintainer:  "g6 developers <g6@localhost>",
		Description: "layer-4 TCP load balancer and bridge\n g6 balances TCP connections over servers with G6's algorithms and\n admin commands: per-core epoll workers, runtime servers, DNS discovery,\n a fleet through etcd, TLS routing by name and PROXY headers.",
		License:     "proprietary",
		Overridables: nfpm.Overridables{
			// The maintainer scripts enable and start the unit as
			// debhelper's do, with init-system-helpers' tools.
			Depends:    []string{"init-system-helpers (>= 1.54~)"},
			Recommends: []string{"systemd"},
			Contents: files.Contents{
				{Source: bin, Destination: "/usr/bin/g6", FileInfo: &files.ContentFileInfo{Mode: 0o755}},
				{Source: filepath.Join(work, "g6.service"), Destination: "/lib/systemd/system/g6.service", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
				{Source: filepath.Join(root, "g6.example.toml"), Destination: "/etc/g6/g6.toml", Type: files.TypeConfig, FileInfo: &files.ContentFileInfo{Mode: 0o644}},
				{Source: filepath.Join(work, "g6.1.gz"), Destination: "/usr/share/man/man1/g6.1.gz", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
				{Source: filepath.Join(work, "completion"), Destination: "/usr/share/bash-completion/completions/g6", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
				{Source: filepath.Join(root, "README.md"), Destination: "/usr/share/doc/g6/README.md", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
			},
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(work, "postinst"),
				PreRemove:   filepath.Join(work, "prerm"),
				PostRemove:  filepath.Join(work, "postrm"),
			},
		},
	})
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		return fmt.Errorf("package: %w", err)
	}
	return f.Close()
}

// versionOf is the binary's own version, in Debian's spelling.
func versionOf(bin string) (string, error) {
	b, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "", fmt.Errorf("%s version: %w", bin, err)
	}
	f := strings.Fields(string(b)) // "g6 0.1.0-dev go1.26.8 linux/amd64"
	if len(f) < 2 {
		return "", fmt.Errorf("%s version said %q", bin, b)
	}
	return strings.ReplaceAll(f[1], "-", "~"), nil
}

// help runs the binary for its help text (printed to stderr).
func help(bin string, args ...string) string {
	var b bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &b
	cmd.Run() // help exits non-zero
	return b.String()
}

// manPage is g6(1), gzipped: the synopsis and every subcommand's options
// as the binary prints them, then what a reader of a man page looks for.
func manPage(bin, version string) ([]byte, error) {
	var m strings.Builder
	fmt.Fprintf(&m, ".TH G6 1 \"\" \"g6 %s\" \"User Commands\"\n.SH NAME\ng6 \\- layer-4 TCP load balancer and bridge\n", version)
	m.WriteString(".SH SYNOPSIS\n.nf\n")
	for _, l := range strings.Split(strings.TrimSpace(help(bin)), "\n")[1:] {
		m.WriteString(roff(strings.TrimSpace(l)) + "\n")
	}
	m.WriteString(".fi\n.SH DESCRIPTION\n" + description + "\n.SH OPTIONS\n")
	for _, c := range []string{"master", "check", "push", "convert", "admin"} {
		fmt.Fprintf(&m, ".SS g6 %s\n.nf\n", c)
		for _, l := range strings.Split(strings.TrimRight(help(bin, c, "-h"), "\n"), "\n")[1:] {
			m.WriteString(roff(l) + "\n")
		}
		m.WriteString(".fi\n")
	}
	m.WriteString(tail)
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	w.Write([]byte(m.String()))
	if err := w.Close(); err != nil {
		return nil, err
	}
	return gz.Bytes(), nil
}

// roff escapes a line of text for a man page.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

const description = `g6 balances TCP connections over servers. \fBg6 master\fR reads its
configuration (/etc/g6/g6.toml in this package), binds the listen addresses
and runs one worker process per core, each an epoll loop that accepts,
chooses a server and forwards bytes both ways. The admin port (\fBg6 admin\fR)
shows and changes servers at run time; /metrics serves Prometheus.
.PP
\fBg6 check\fR validates a configuration and names the file and line of each
mistake. \fBg6 convert\fR rewrites a G6.conf as g6.toml. \fBg6 push\fR stores a
configuration in a fleet's etcd.`

const tail = `.SH SIGNALS
.TP
.B HUP
reload the configuration (rolled back if it fails)
.TP
.B USR2
upgrade: a new master from the binary on disk takes over the sockets
.TP
.B USR1
reopen the log files
.TP
.B TERM, INT
stop: workers drain for drain_timeout
.SH FILES
.TP
.I /etc/g6/g6.toml
the configuration (every key annotated)
.TP
.I /lib/systemd/system/g6.service
the systemd unit (systemctl reload g6 checks, then sends HUP)
.SH SEE ALSO
/usr/share/doc/g6/README.md
`

// completion completes g6's subcommands, their options, files after -c
// and -o, and the admin commands.
const completion = `# bash completion for g6
_g6() {
    local cur prev
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    case "$prev" in
        -c|-o|--log-file|--pid-file|-config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "master check push convert admin version" -- "$cur"))
        return
    fi
    case "${COMP_WORDS[1]}" in
        master)  COMPREPLY=($(compgen -W "-c -w --log-level --log-file --pid-file --daemon --etcd --prefix --node" -- "$cur")) ;;
        check)   COMPREPLY=($(compgen -W "-c --resolve" -- "$cur")) ;;
        push)    COMPREPLY=($(compgen -W "-c --etcd --prefix" -- "$cur")) ;;
        convert) COMPREPLY=($(compgen -W "-o" -- "$cur") $(compgen -f -- "$cur")) ;;
        admin)   COMPREPLY=($(compgen -W "-a -c -t show disable enable drain add del set heartbeat reload shutdown help" -- "$cur")) ;;
    esac
}
complete -F _g6 g6
`

// The maintainer scripts do what debhelper's systemd snippets do.
const postinst = `#!/bin/sh
set -e
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ]; then
    if command -v deb-systemd-helper >/dev/null; then
        deb-systemd-helper unmask g6.service >/dev/null || true
        if deb-systemd-helper --quiet was-enabled g6.service; then
            deb-systemd-helper enable g6.service >/dev/null || true
        else
            deb-systemd-helper update-state g6.service >/dev/null || true
        fi
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
        deb-systemd-invoke start g6.service >/dev/null || true
    fi
fi
`

const prerm = `#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    deb-systemd-invoke stop g6.service >/dev/null || true
fi
`

const postrm = `#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = "purge" ] && command -v deb-systemd-helper >/dev/null; then
    deb-systemd-helper purge g6.service >/dev/null || true
fi
`
