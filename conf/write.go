package conf

import (
	"fmt"
	"strings"
	"time"
)

// TOML renders a resolved config as g6.toml: rules in order, one table
// each, every effective value written out (G6's global groups applied only
// to the rules after them, so values are resolved per rule rather than left
// to [global]). source names the file for the comments.
func (c *Config) TOML(source string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Converted by `g6 convert` from %s.\n# Check it with: g6 check -c FILE\n\n", source)
	for _, w := range c.Warnings {
		fmt.Fprintf(&b, "# %s\n", w)
	}
	if len(c.Warnings) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("[global]\n")
	fmt.Fprintf(&b, "moratorium = %s", durText(c.Global.Moratorium))
	if c.Global.Moratorium == legacyMoratorium {
		b.WriteString("  # G6's moratorium 0: a failed server was skipped for the rest of the second")
	}
	b.WriteString("\n")
	if a := c.Admin; a != nil {
		fmt.Fprintf(&b, "\n# %s: %s line %d\n[admin]\nid = %s\n", a.ID, source, a.Line, tomlString(a.ID))
		writeList(&b, "listen", listenEntries(a.Listen))
		writeList(&b, "clients", clientEntries(a.Clients))
	}
	for _, r := range c.Rules {
		fmt.Fprintf(&b, "\n# %s: %s line %d\n[[rule]]\nid = %s\nalgorithm = %q\n", r.ID, source, r.Line, tomlString(r.ID), r.Algorithm)
		writeList(&b, "clients", clientEntries(r.Clients))
		writeList(&b, "listen", listenEntries(r.Listen))
		writeList(&b, "servers", serverEntries(r.Servers))
	}
	return []byte(b.String())
}

func writeList(b *strings.Builder, key string, entries []string) {
	if len(entries) <= 3 && len(strings.Join(entries, ", ")) < 70 {
		fmt.Fprintf(b, "%s = [%s]\n", key, strings.Join(entries, ", "))
		return
	}
	fmt.Fprintf(b, "%s = [\n", key)
	for _, e := range entries {
		fmt.Fprintf(b, "  %s,\n", e)
	}
	b.WriteString("]\n")
}

func clientEntries(cs []Client) []string {
	var out []string
	for _, c := range cs {
		var kv []string
		if c.MaxConnections > 0 {
			kv = append(kv, fmt.Sprintf("max_connections = %d", c.MaxConnections))
		}
		if c.MaxIP > 0 {
			kv = append(kv, fmt.Sprintf("max_ip = %d", c.MaxIP))
		}
		if c.MaxConnectionsPerIP > 0 {
			kv = append(kv, fmt.Sprintf("max_connections_per_ip = %d", c.MaxConnectionsPerIP))
		}
		out = append(out, entry("pattern", c.Pattern.Text, kv))
	}
	return out
}

func listenEntries(ls []Listen) []string {
	var out []string
	for _, l := range ls {
		var kv []string
		if l.Timeout > 0 {
			kv = append(kv, "timeout = "+durText(l.Timeout))
		}
		out = append(out, entry("address", l.Address, kv))
	}
	return out
}

func serverEntries(ss []Server) []string {
	var out []string
	for _, s := range ss {
		var kv []string
		if s.MaxConnections > 0 {
			kv = append(kv, fmt.Sprintf("max_connections = %d", s.MaxConnections))
		}
		if s.Heartbeat > 0 {
			kv = append(kv, "heartbeat = "+durText(s.Heartbeat))
		}
		if s.Weight > 1 {
			kv = append(kv, fmt.Sprintf("weight = %d", s.Weight))
		}
		if s.ProxyProtocol != "" {
			kv = append(kv, fmt.Sprintf("proxy_protocol = %q", s.ProxyProtocol))
		}
		out = append(out, entry("address", s.Address, kv))
	}
	return out
}

func entry(nameKey, name string, kv []string) string {
	if len(kv) == 0 {
		return tomlString(name)
	}
	return fmt.Sprintf("{ %s = %s, %s }", nameKey, tomlString(name), strings.Join(kv, ", "))
}

func durText(d Duration) string { return fmt.Sprintf("%q", time.Duration(d).String()) }

// tomlString quotes s as a TOML basic string, keeping UTF-8 as it is.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
