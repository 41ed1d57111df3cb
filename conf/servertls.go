package conf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"

	"g6/certs"
)

// ServerTLS originates TLS to a server (the `tls` table of a server entry,
// server_defaults or the rule; the most specific table wins whole).
type ServerTLS struct {
	// ServerName is sent as SNI and verified against the certificate;
	// "" = the name entry's host name, or the server's IP (then no SNI,
	// and the certificate must name the IP).
	ServerName string `json:",omitempty"`
	CA         string `json:",omitempty"` // the CAs the server's certificate is verified with; "" = the system's
	Verify     bool   // false: any certificate is taken (encrypted, not authenticated)
	// Cert and Key are g6's client certificate, for servers that require
	// one.
	Cert string   `json:",omitempty"`
	Key  string   `json:",omitempty"`
	ALPN []string `json:",omitempty"`
}

// Profile identifies t among a config's server TLS settings: the shared
// region carries it in each server's slot, and a worker finds the
// settings by it. Never 0 (0 is plain TCP).
func (t *ServerTLS) Profile() uint64 {
	if t == nil {
		return 0
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%q %q %t %q %q %q", t.ServerName, t.CA, t.Verify, t.Cert, t.Key, strings.Join(t.ALPN, ","))
	if p := h.Sum64(); p != 0 {
		return p
	}
	return 1
}

// ServerTLSProfiles lists every server TLS setting of the config by
// Profile: those of its servers, name entries and rules' server defaults
// (what a server added at runtime gets).
func (c *Config) ServerTLSProfiles() map[uint64]*ServerTLS {
	out := map[uint64]*ServerTLS{}
	add := func(s Server) {
		if s.TLS != nil {
			out[s.TLS.Profile()] = s.TLS
		}
	}
	for _, r := range c.Rules {
		for _, s := range r.Servers {
			add(s)
		}
		for _, n := range r.Names {
			add(n.Server)
		}
		add(r.ServerDefaults)
	}
	return out
}

// fileServerTLS is a server's `tls` table as written.
type fileServerTLS struct {
	ServerName *string  `toml:"server_name"`
	CA         *string  `toml:"ca"`
	Verify     *bool    `toml:"verify"`
	Cert       *string  `toml:"cert"`
	Key        *string  `toml:"key"`
	ALPN       []string `toml:"alpn"`
}

// decodeServerTLS reads the `tls` table of a server entry (entries are
// decoded by hand: they may be strings).
func decodeServerTLS(val any) (*fileServerTLS, error) {
	m, ok := val.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("tls must be a table { server_name = \"NAME\", ca = \"PATH\", verify = true }, not %T", val)
	}
	t := &fileServerTLS{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		var err error
		switch k {
		case "server_name", "ca", "cert", "key":
			s, ok := v.(string)
			if !ok {
				err = fmt.Errorf("must be a string, not %T", v)
				break
			}
			*map[string]**string{"server_name": &t.ServerName, "ca": &t.CA, "cert": &t.Cert, "key": &t.Key}[k] = &s
		case "verify":
			b, ok := v.(bool)
			if !ok {
				err = fmt.Errorf("must be true or false, not %T", v)
			}
			t.Verify = &b
		case "alpn":
			t.ALPN, err = stringList(v)
		default:
			err = fmt.Errorf("unknown key (allowed: alpn, ca, cert, key, server_name, verify)")
		}
		if err != nil {
			return nil, fmt.Errorf("tls.%s: %w", k, err)
		}
	}
	return t, nil
}

// resolve fills the defaults of a written table and makes its paths
// absolute against the config file's directory; nil is plain TCP.
func (t *fileServerTLS) resolve(file string) *ServerTLS {
	if t == nil {
		return nil
	}
	return &ServerTLS{ServerName: deref(t.ServerName, ""), CA: filePath(file, deref(t.CA, "")), Verify: deref(t.Verify, true),
		Cert: filePath(file, deref(t.Cert, "")), Key: filePath(file, deref(t.Key, "")), ALPN: t.ALPN}
}

// serverTLSSettings checks a server's tls table: the CA bundle parses, a
// client certificate comes with its key, matches it and has not expired.
func (v *validator) serverTLSSettings(owner string, at int, label string, t *ServerTLS) {
	if t == nil {
		return
	}
	where := fmt.Sprintf("%s: server %s: tls", owner, label)
	if t.CA != "" {
		v.caFile(where+": ca", at, t.CA)
	}
	switch {
	case (t.Cert == "") != (t.Key == ""):
		v.errs.add(v.file, at, "%s: cert and key go together (g6's client certificate)", where)
	case t.Cert != "":
		v.certPair(where, at, t.Cert, t.Key)
	}
	if t.CA != "" && !t.Verify {
		v.cfg.Warnings = append(v.cfg.Warnings, fmt.Sprintf("%s:%d: warning: %s: ca is not used with verify = false", v.file, at, where))
	}
}

// Config is the crypto/tls configuration of t, from the files' contents
// validation read (Config.Files); roots are the CAs when t names none
// (nil: the system's, read at the first handshake). ServerName is left as
// set: for a server without one, the caller names its IP.
func (t *ServerTLS) Config(files map[string][]byte, roots *x509.CertPool) (*tls.Config, error) {
	c := &tls.Config{
		ServerName:         t.ServerName,
		NextProtos:         t.ALPN,
		InsecureSkipVerify: !t.Verify,
		RootCAs:            roots,
		MinVersion:         tls.VersionTLS12,
		// Resumption to the servers saves them and g6 a full handshake
		// per connection.
		ClientSessionCache: tls.NewLRUClientSessionCache(256),
	}
	if t.CA != "" {
		pool, err := certs.Pool(files[t.CA], t.CA)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if t.Cert != "" {
		p, err := certs.Parse(files[t.Cert], files[t.Key], t.Cert, t.Key)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{p.Cert}
	}
	return c, nil
}
