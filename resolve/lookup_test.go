package resolve

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"g6/internal/testenv"

	"github.com/miekg/dns"
)

func TestHostAndService(t *testing.T) {
	d := testenv.StartDNS(t)
	d.SetHosts("127.0.0.11 db.internal", "127.0.0.12 db.internal", "::1 db.internal", "127.0.0.21 r1.internal", "127.0.0.22 r2.internal")
	d.SetSRV("_pg._tcp.db.internal,r1.internal,5432,10,1", "_pg._tcp.db.internal,r2.internal,5433,20,3")
	r := &Resolver{Servers: []string{"127.0.0.1:1", d.Addr}} // the first server is dead: the next one answers
	ctx := context.Background()
	got, err := r.Host(ctx, "db.internal", 80)
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(addrsOf(got)); s != "[127.0.0.11:80 127.0.0.12:80 [::1]:80]" {
		t.Fatalf("host: %s", s)
	}
	if got[0].TTL.Seconds() != 1 {
		t.Fatalf("TTL %v, want dnsmasq's 1 s", got[0].TTL)
	}
	srv, err := r.Service(ctx, "_pg._tcp.db.internal")
	if err != nil {
		t.Fatal(err)
	}
	if len(srv) != 2 || srv[0].Addr.String() != "127.0.0.21:5432" || srv[0].Priority != 10 || srv[0].Weight != 1 ||
		srv[1].Addr.String() != "127.0.0.22:5433" || srv[1].Priority != 20 || srv[1].Weight != 3 {
		t.Fatalf("service: %+v", srv)
	}
	if _, err := r.Host(ctx, "nosuch.internal", 80); !errors.Is(err, ErrNXDomain) {
		t.Fatalf("an unknown name: %v, want NXDOMAIN", err)
	}
	d.Stop()
	if _, err := r.Host(ctx, "db.internal", 80); err == nil {
		t.Fatal("no error with every server down")
	}
}

func addrsOf(a []Address) []string {
	var out []string
	for _, x := range a {
		out = append(out, x.Addr.String())
	}
	return out
}

// TestOneTypeRefused: a server that answers A and refuses AAAA (issue #32:
// the name was taken for one that does not resolve): the A addresses come
// back, with a PartialError naming the refused query.
func TestOneTypeRefused(t *testing.T) {
	d := testenv.StartRefusingDNS(t, map[string][]string{"db.internal": {"127.0.0.11", "127.0.0.12"}}, dns.TypeAAAA)
	r := &Resolver{Servers: []string{d.Addr}}
	got, err := r.Host(context.Background(), "db.internal", 80)
	var pe *PartialError
	if !errors.As(err, &pe) || !strings.Contains(pe.Error(), "AAAA") || !strings.Contains(pe.Error(), "REFUSED") {
		t.Fatalf("error %v, want a partial one naming AAAA and REFUSED", err)
	}
	if s := fmt.Sprint(addrsOf(got)); s != "[127.0.0.11:80 127.0.0.12:80]" {
		t.Fatalf("addresses %s", s)
	}
	// Both types failing is still a failure.
	r2 := &Resolver{Servers: []string{testenv.StartRefusingDNS(t, nil, dns.TypeA).Addr}}
	if got, err := r2.Host(context.Background(), "db.internal", 80); err == nil || errors.As(err, &pe) || len(got) != 0 {
		t.Fatalf("A refused, no AAAA: %v %v", got, err)
	}
}
