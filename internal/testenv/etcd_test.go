package testenv

import (
	"strings"
	"testing"
)

// TestEtcd: the harness's etcd stores and keeps data across Stop/Start.
func TestEtcd(t *testing.T) {
	e := StartEtcd(t)
	if _, err := e.Ctl("put", "/g6/t/k", "v1"); err != nil {
		t.Fatal(err)
	}
	rev := e.Revision()
	e.Stop()
	if _, err := e.Ctl("get", "/g6/t/k"); err == nil {
		t.Fatal("etcdctl reached a stopped etcd")
	}
	e.Start()
	out, err := e.Ctl("get", "/g6/t/k", "--print-value-only")
	if err != nil || strings.TrimSpace(out) != "v1" || e.Revision() != rev {
		t.Fatalf("after a restart: %q %v, revision %d want %d", out, err, e.Revision(), rev)
	}
}
