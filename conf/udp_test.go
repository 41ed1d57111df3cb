package conf

import (
	"strings"
	"testing"
)

const udpRule = `
[[rule]]
id = "dns"
protocol = "udp"
algorithm = "RR"
responses = 1
clients = ["*:*"]
listen = ["127.0.0.1:5353", { address = "127.0.0.1:5354", timeout = "5s", responses = 2 }]
servers = ["127.0.0.1:53"]
`

func TestUDPRule(t *testing.T) {
	cfg, err := ParseTOML("t.toml", []byte(udpRule+strings.Replace(minimal, "127.0.0.1:8080", "127.0.0.1:5353", 1)))
	if err != nil {
		t.Fatal(err) // a TCP rule may share the UDP rule's IP:PORT
	}
	r := cfg.Rules[0]
	if r.Protocol != ProtocolUDP || r.Responses != 1 || r.Listen[0].Timeout != DefaultUDPTimeout || r.Listen[1].Timeout != Duration(5e9) || r.Listen[1].Responses != 2 {
		t.Errorf("udp rule %+v", r)
	}
	if cfg.Rules[1].Protocol != ProtocolTCP || cfg.Global.MaxSessions != DefaultMaxSessions {
		t.Errorf("tcp rule %q, max_sessions %d", cfg.Rules[1].Protocol, cfg.Global.MaxSessions)
	}
	for _, tt := range []struct{ text, want string }{
		{strings.Replace(udpRule, `"udp"`, `"sctp"`, 1), `t.toml:4: rule "dns": protocol must be "tcp" or "udp", not "sctp"`},
		{strings.Replace(udpRule, `responses = 1`, `sni = ["a.test"]`, 1), `rule "dns": sni is for TCP; this rule is protocol = "udp"`},
		{strings.Replace(udpRule, `servers = ["127.0.0.1:53"]`, `servers = [{ address = "127.0.0.1:53", proxy_protocol = "v2" }]`, 1), `rule "dns": server 127.0.0.1:53: proxy_protocol is for TCP`},
		{strings.Replace(udpRule, `"127.0.0.1:5353",`, `{ address = "127.0.0.1:5353", quickack = true },`, 1), `rule "dns": listen 127.0.0.1:5353: quickack is for TCP`},
		{strings.Replace(minimal, `algorithm = "RR"`, "algorithm = \"RR\"\nresponses = 1", 1), `rule "r": responses is for UDP; this rule is protocol = "tcp"`},
		{udpRule + `health_check = { type = "http" }` + "\n", `rule "dns": a UDP rule's health_check is type "tcp" (send and expect a datagram) or "dns", not "http"`},
		{udpRule + strings.Replace(strings.Replace(udpRule, `"dns"`, `"dns2"`, 1), `, { address = "127.0.0.1:5354", timeout = "5s", responses = 2 }`, "", 1), `127.0.0.1:5353`},
	} {
		_, err := ParseTOML("t.toml", []byte(tt.text))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v, want %q", err, tt.want)
		}
	}
}

func TestListenKey(t *testing.T) {
	for _, tt := range []struct{ proto, addr, key string }{
		{ProtocolTCP, "127.0.0.1:53", "127.0.0.1:53"},
		{ProtocolUDP, "127.0.0.1:53", "udp/127.0.0.1:53"},
		{ProtocolUDP, "[::ffff:127.0.0.1]:53", "udp/127.0.0.1:53"},
		{ProtocolUDP, "[0:0::1]:53", "udp/[::1]:53"},
		{ProtocolTCP, "[::1]:8080", "[::1]:8080"},
	} {
		key := ListenKey(tt.proto, tt.addr)
		if key != tt.key || AddrKey(key) != key {
			t.Errorf("ListenKey(%s, %s) = %q (AddrKey of it %q), want %q", tt.proto, tt.addr, key, AddrKey(key), tt.key)
		}
		if proto, addr := SplitListenKey(key); proto != tt.proto || AddrKey(addr) != AddrKey(tt.addr) {
			t.Errorf("SplitListenKey(%q) = %s, %s", key, proto, addr)
		}
	}
}
