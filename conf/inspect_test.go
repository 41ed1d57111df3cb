package conf

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sniPair is two rules on one address, told apart by sni; %A and %B are
// replaced by each rule's extra lines.
const sniPair = `
[[rule]]
id = "api"
algorithm = "LC"
listen = ["127.0.0.1:8443"]
sni = ["api.example.com", "*.api.example.com"]
alpn = ["h2", "http/1.1"]
clients = ["*:*"]
servers = ["127.0.0.1:9001"]

[[rule]]
id = "default-tls"
algorithm = "RR"
listen = ["127.0.0.1:8443"]
clients = ["*:*"]
servers = ["127.0.0.1:9002"]
`

func TestSNIRulesLoad(t *testing.T) {
	cfg, err := ParseTOML("t.toml", []byte(sniPair))
	if err != nil {
		t.Fatal(err)
	}
	api := cfg.Rules[0]
	if !reflect.DeepEqual(api.SNI, []string{"api.example.com", "*.api.example.com"}) || !reflect.DeepEqual(api.ALPN, []string{"h2", "http/1.1"}) {
		t.Fatalf("api rule: sni %q alpn %q", api.SNI, api.ALPN)
	}
	if l := api.Listen[0]; l.InspectTimeout != DefaultInspectTimeout || l.AcceptProxy != "" {
		t.Fatalf("api listen %+v", l)
	}
}

func TestAcceptProxyInheritance(t *testing.T) {
	src := `
[global]
accept_proxy = "v2"
proxy_sources = ["10.0.0.0/8"]
inspect_timeout = "2s"

[[rule]]
id = "r"
algorithm = "RR"
clients = ["*:*"]
listen_defaults = { accept_proxy = "any" }
listen = [
  "127.0.0.1:8080",
  { address = "127.0.0.1:8081", proxy_sources = ["127.0.0.1", "::1"], inspect_timeout = "300ms" },
  { address = "127.0.0.1:8082", accept_proxy = "", proxy_sources = [] },
]
servers = ["127.0.0.1:9001"]
`
	cfg, err := ParseTOML("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []Listen{
		{Address: "127.0.0.1:8080", InspectTimeout: Duration(2 * time.Second), AcceptProxy: "any", ProxySources: []string{"10.0.0.0/8"}},
		{Address: "127.0.0.1:8081", InspectTimeout: Duration(300 * time.Millisecond), AcceptProxy: "any", ProxySources: []string{"127.0.0.1", "::1"}},
		{Address: "127.0.0.1:8082", InspectTimeout: Duration(2 * time.Second), ProxySources: []string{}},
	}
	if got := cfg.Rules[0].Listen; !reflect.DeepEqual(got, want) {
		t.Fatalf("listen\n got %+v\nwant %+v", got, want)
	}
}

func TestInspectErrors(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"two rules without sni", strings.Replace(sniPair, `sni = ["api.example.com", "*.api.example.com"]`+"\n"+`alpn = ["h2", "http/1.1"]`, "", 1),
			`t.toml:13: rule "default-tls": listen address 127.0.0.1:8443 is already used by rule "api" (rules may share a listen address only when sni tells them apart`},
		{"same sni entry twice", sniPair + strings.Replace(strings.Replace(sniPair[strings.Index(sniPair, "[[rule]]"):strings.Index(sniPair, "\n\n[[rule]]")], `"api"`, `"api2"`, 1), `"api.example.com", "*.api.example.com"`, `"www.example.com", "API.example.com"`, 1),
			`t.toml:21: rule "api2": sni "API.example.com" on 127.0.0.1:8443 is also rule "api"'s`},
		{"sni listed twice in a rule", strings.Replace(sniPair, `"*.api.example.com"`, `"Api.Example.com"`, 1), `t.toml:6: rule "api": sni "Api.Example.com" is listed twice`},
		{"bad sni", strings.Replace(sniPair, `"*.api.example.com"`, `"api.*.com"`, 1), `t.toml:6: rule "api": sni "api.*.com": only a leading "*." may be a wildcard`},
		{"sni with a trailing dot", strings.Replace(sniPair, `"*.api.example.com"`, `"api.example.org."`, 1), `sni "api.example.org.": a TLS server name has no trailing dot`},
		{"alpn without sni", strings.Replace(minimal, `id = "r"`, "id = \"r\"\nalpn = [\"h2\"]", 1), `t.toml:4: rule "r": alpn needs sni`},
		{"empty alpn", strings.Replace(sniPair, `"http/1.1"`, `""`, 1), `t.toml:7: rule "api": alpn "": a protocol id is 1-255 bytes`},
		{"admin shares a rule's address", "[admin]\nlisten = [\"127.0.0.1:8080\"]\nclients = [\"*:*\"]\n" + minimal, `t.toml:9: rule "r": listen address 127.0.0.1:8080 is already used by admin "admin"`},
		{"listed twice in one rule", strings.Replace(minimal, `["127.0.0.1:8080"]`, `["127.0.0.1:8080", "127.0.0.1:8080"]`, 1), `rule "r": listen address 127.0.0.1:8080 is listed twice`},
		{"inspection differs on a shared address", strings.Replace(sniPair, `listen = ["127.0.0.1:8443"]
clients = ["*:*"]
servers = ["127.0.0.1:9002"]`, `listen = [{ address = "127.0.0.1:8443", inspect_timeout = "1s" }]
clients = ["*:*"]
servers = ["127.0.0.1:9002"]`, 1), `t.toml:14: rule "default-tls": listen 127.0.0.1:8443: inspect_timeout, accept_proxy, proxy_sources, keepalive, quickack and tls must be as for rule "api"`},
		{"bad accept_proxy", strings.Replace(minimal, `["127.0.0.1:8080"]`, `[{ address = "127.0.0.1:8080", accept_proxy = "v3", proxy_sources = ["::1"] }]`, 1), `t.toml:6: rule "r": listen 127.0.0.1:8080: accept_proxy must be "v1", "v2" or "any", not "v3"`},
		{"accept_proxy without sources", strings.Replace(minimal, `["127.0.0.1:8080"]`, `[{ address = "127.0.0.1:8080", accept_proxy = "v2" }]`, 1), `t.toml:6: rule "r": listen 127.0.0.1:8080: accept_proxy needs proxy_sources`},
		{"sources without accept_proxy", strings.Replace(minimal, `["127.0.0.1:8080"]`, `[{ address = "127.0.0.1:8080", proxy_sources = ["::1"] }]`, 1), `proxy_sources without accept_proxy`},
		{"bad source", strings.Replace(minimal, `["127.0.0.1:8080"]`, `[{ address = "127.0.0.1:8080", accept_proxy = "v1", proxy_sources = ["10.0.0.0/33"] }]`, 1), `t.toml:6: rule "r": listen 127.0.0.1:8080: proxy_sources entry: "10.0.0.0/33" is not a CIDR`},
		{"source a name", "[global]\naccept_proxy = \"any\"\nproxy_sources = [\"lb.internal\"]\n" + minimal, `t.toml:9: rule "r": listen 127.0.0.1:8080: proxy_sources entry "lb.internal" is not a CIDR or an IP`},
		{"sources not strings", strings.Replace(minimal, `["127.0.0.1:8080"]`, `[{ address = "127.0.0.1:8080", accept_proxy = "v1", proxy_sources = [10] }]`, 1), `proxy_sources must be a list of strings`},
		{"zero inspect_timeout", strings.Replace(minimal, `["127.0.0.1:8080"]`, `[{ address = "127.0.0.1:8080", inspect_timeout = 0 }]`, 1), `t.toml:6: rule "r": listen 127.0.0.1:8080: inspect_timeout must be positive`},
		{"accept_proxy on admin", "[admin]\nlisten = [{ address = \"127.0.0.1:8600\", accept_proxy = \"v1\", proxy_sources = [\"::1\"] }]\nclients = [\"*:*\"]\n" + minimal, `t.toml:2: admin "admin": listen 127.0.0.1:8600: the admin listener reads no PROXY header`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTOML("t.toml", []byte(tt.text))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error\n  %v\nwant it to contain\n  %s", err, tt.want)
			}
		})
	}
}

func TestCheckSNI(t *testing.T) {
	tests := []struct{ in, want string }{ // want: "" = ok, else a part of the error
		{"api.example.com", ""},
		{"*.api.example.com", ""},
		{"API.Example.COM", ""},
		{"localhost", ""},
		{"*.example", "at least two labels"},
		{"*", "only a leading"},
		{"a.*.example.com", "only a leading"},
		{"**.example.com", "only a leading"},
		{"example.com.", "no trailing dot"},
		{"10.0.0.1", "is an address"},
		{"exa_mple.com", "is not a letter"},
		{"-a.example.com", "may not start or end"},
		{"", "empty name"},
	}
	for _, tt := range tests {
		err := CheckSNI(tt.in)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.in, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestParseSource(t *testing.T) {
	tests := []struct{ in, want string }{ // want "" = an error
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"127.0.0.1", "127.0.0.1/32"},
		{"::1", "::1/128"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:10.0.0.1", "10.0.0.1/32"},
		{"::ffff:0.0.0.0/64", ""},
		{"10.0.0.0/33", ""},
		{"10.0.0.0/", ""},
		{"fe80::1%eth0", ""},
		{"*", ""},
		{"", ""},
	}
	for _, tt := range tests {
		p, err := ParseSource(tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("%q: accepted as %v", tt.in, p)
		case tt.want != "" && (err != nil || p.String() != tt.want):
			t.Errorf("%q: %v %v, want %s", tt.in, p, err, tt.want)
		}
	}
}

// FuzzParseSource: an accepted entry is a masked prefix that contains the
// address written, never an IPv4-mapped one.
func FuzzParseSource(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "::1", "::ffff:10.0.0.0/104", "1.2.3.4/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseSource(s)
		if err != nil {
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() {
			t.Fatalf("%q: %v", s, p)
		}
		ip, _, _ := strings.Cut(s, "/")
		if a, err := netip.ParseAddr(ip); err == nil && !p.Contains(a.Unmap()) {
			t.Fatalf("%q: %v does not contain %v", s, p, a)
		}
	})
}
