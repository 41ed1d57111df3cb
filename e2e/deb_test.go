package e2e

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"g6/internal/testenv"
)

// TestDebPackage: tools/deb (nfpm) builds a package that dpkg-deb reads
// (name, dependencies, the conffile), whose every path dpkg -x unpacks with
// its mode, whose installed g6 accepts its installed config, and whose man
// page and completion are what their tools expect.
func TestDebPackage(t *testing.T) {
	dir := t.TempDir()
	deb := filepath.Join(dir, "g6.deb")
	mustRun(t, 5*time.Minute, "go", "run", "g6/tools/deb", "-bin", testenv.Bin(t, "g6"), "-o", deb, "-root", testenv.Root())
	info := mustRun(t, 30*time.Second, "dpkg-deb", "-I", deb)
	for _, want := range []string{"Package: g6", "Architecture: amd64", "Depends: init-system-helpers (>= 1.54~)", "Recommends: systemd", "conffiles", "postinst", "prerm", "postrm"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb -I lacks %q:\n%s", want, info)
		}
	}
	if c := mustRun(t, 30*time.Second, "sh", "-c", "dpkg-deb --ctrl-tarfile "+deb+" | tar -xO ./conffiles"); strings.TrimSpace(c) != "/etc/g6/g6.toml" {
		t.Errorf("conffiles: %q", c)
	}
	root := filepath.Join(dir, "root")
	mustRun(t, 30*time.Second, "dpkg", "-x", deb, root)
	for path, mode := range map[string]os.FileMode{
		"usr/bin/g6":                               0o755,
		"lib/systemd/system/g6.service":            0o644,
		"etc/g6/g6.toml":                           0o644,
		"usr/share/man/man1/g6.1.gz":               0o644,
		"usr/share/bash-completion/completions/g6": 0o644,
		"usr/share/doc/g6/README.md":               0o644,
	} {
		st, err := os.Stat(filepath.Join(root, path))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("/%s: %v, mode %v, want %v", path, err, st.Mode().Perm(), mode)
		}
	}
	if out := mustRun(t, 10*time.Second, filepath.Join(root, "usr/bin/g6"), "check", "-c", filepath.Join(root, "etc/g6/g6.toml")); !strings.Contains(out, "ok") {
		t.Errorf("the installed g6 on the installed config: %s", out)
	}
	unit, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/g6.service"))
	if !strings.Contains(string(unit), "ExecStart=/usr/bin/g6 master -c /etc/g6/g6.toml") || strings.Contains(string(unit), "/usr/local/bin") {
		t.Errorf("the packaged unit runs another binary:\n%s", unit)
	}
	f, err := os.Open(filepath.Join(root, "usr/share/man/man1/g6.1.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	man, _ := io.ReadAll(z)
	for _, want := range []string{".TH G6 1", ".SH SYNOPSIS", "g6 check \\-c FILE", ".SS g6 master", "config file", ".SH SIGNALS"} {
		if !strings.Contains(string(man), want) {
			t.Errorf("g6(1) lacks %q", want)
		}
	}
	if out := mustRun(t, 10*time.Second, "bash", "-c", "source "+filepath.Join(root, "usr/share/bash-completion/completions/g6")+
		" && COMP_WORDS=(g6 ch) COMP_CWORD=1 && _g6 && echo ${COMPREPLY[*]}"); strings.TrimSpace(out) != "check" {
		t.Errorf("completing \"g6 ch\": %q", out)
	}
}

// mustRun runs a command to completion and fails the test if it fails.
func mustRun(t *testing.T, d time.Duration, name string, args ...string) string {
	t.Helper()
	out, err := testenv.Run(t, d, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
