package conf

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"g6/certs"
)

// ListenTLS terminates TLS on a listen address (the `tls` table of a
// listen entry, listen_defaults or [global]; the most specific table wins
// whole).
type ListenTLS struct {
	// Certificates are the address's certificate files; the ClientHello's
	// server name picks one (certs.Select).
	Certificates []CertFile
	MinVersion   string   `json:",omitempty"` // "1.2" (default) or "1.3"
	ALPN         []string `json:",omitempty"` // offered to clients, in preference order
	// ClientCA verifies client certificates; ClientAuth is "none",
	// "request" (verified if sent) or "require".
	ClientCA         string `json:",omitempty"`
	ClientAuth       string
	HandshakeTimeout Duration
	SessionTickets   bool
}

// CertFile is a certificate chain file and its key file.
type CertFile struct {
	Cert string
	Key  string
}

// TLS client authentication modes (ListenTLS.ClientAuth).
const (
	ClientAuthNone    = "none"
	ClientAuthRequest = "request"
	ClientAuthRequire = "require"
)

// DefaultHandshakeTimeout bounds a TLS handshake g6 terminates.
const DefaultHandshakeTimeout = Duration(5 * time.Second)

// CertWarnDays: a certificate with fewer days left is a warning in g6
// check and at load.
const CertWarnDays = 14

// fileListenTLS is the `tls` table as written.
type fileListenTLS struct {
	Certificates     []fileCert `toml:"certificates"`
	MinVersion       *string    `toml:"min_version"`
	ALPN             []string   `toml:"alpn"`
	ClientCA         *string    `toml:"client_ca"`
	ClientAuth       *string    `toml:"client_auth"`
	HandshakeTimeout *Duration  `toml:"handshake_timeout"`
	SessionTickets   *bool      `toml:"session_tickets"`
}

type fileCert struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

// decodeListenTLS reads a `tls` table of a listen entry (entries are
// decoded by hand: they may be strings).
func decodeListenTLS(val any) (*fileListenTLS, error) {
	m, ok := val.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("tls must be a table { certificates = [{ cert = \"PATH\", key = \"PATH\" }] }, not %T", val)
	}
	t := &fileListenTLS{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		var err error
		switch k {
		case "certificates":
			t.Certificates, err = decodeCerts(v)
		case "min_version", "client_ca", "client_auth":
			s, ok := v.(string)
			if !ok {
				err = fmt.Errorf("must be a string, not %T", v)
				break
			}
			*map[string]**string{"min_version": &t.MinVersion, "client_ca": &t.ClientCA, "client_auth": &t.ClientAuth}[k] = &s
		case "alpn":
			t.ALPN, err = stringList(v)
		case "handshake_timeout":
			t.HandshakeTimeout = new(Duration)
			err = t.HandshakeTimeout.UnmarshalTOML(v)
		case "session_tickets":
			b, ok := v.(bool)
			if !ok {
				err = fmt.Errorf("must be true or false, not %T", v)
			}
			t.SessionTickets = &b
		default:
			err = fmt.Errorf("unknown key (allowed: alpn, certificates, client_auth, client_ca, handshake_timeout, min_version, session_tickets)")
		}
		if err != nil {
			return nil, fmt.Errorf("tls.%s: %w", k, err)
		}
	}
	return t, nil
}

func decodeCerts(v any) ([]fileCert, error) {
	list, ok := v.([]map[string]any)
	if !ok {
		if anys, ok2 := v.([]any); ok2 {
			for _, a := range anys {
				m, ok := a.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("each entry must be { cert = \"PATH\", key = \"PATH\" }, not %T", a)
				}
				list = append(list, m)
			}
		} else {
			return nil, fmt.Errorf("must be a list of { cert = \"PATH\", key = \"PATH\" }, not %T", v)
		}
	}
	var out []fileCert
	for _, m := range list {
		var c fileCert
		for k, x := range m {
			s, ok := x.(string)
			switch {
			case !ok:
				return nil, fmt.Errorf("%s must be a path, not %T", k, x)
			case k == "cert":
				c.Cert = s
			case k == "key":
				c.Key = s
			default:
				return nil, fmt.Errorf("unknown key %q (allowed: cert, key)", k)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func stringList(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("must be a list of strings, not %T", v)
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("must be a list of strings, not %T", x)
		}
		out = append(out, s)
	}
	return out, nil
}

// resolve fills the defaults of a written table and makes its paths
// absolute against the config file's directory; nil is no TLS.
func (t *fileListenTLS) resolve(file string) *ListenTLS {
	if t == nil {
		return nil
	}
	out := &ListenTLS{MinVersion: deref(t.MinVersion, "1.2"), ALPN: t.ALPN, ClientCA: filePath(file, deref(t.ClientCA, "")),
		ClientAuth: deref(t.ClientAuth, ClientAuthNone), HandshakeTimeout: deref(t.HandshakeTimeout, DefaultHandshakeTimeout),
		SessionTickets: deref(t.SessionTickets, true)}
	for _, c := range t.Certificates {
		out.Certificates = append(out.Certificates, CertFile{Cert: filePath(file, c.Cert), Key: filePath(file, c.Key)})
	}
	return out
}

// filePath is p relative to the config file's directory (p as it is when
// absolute, empty, or the config came from the fleet's store).
func filePath(configFile, p string) string {
	if p == "" || filepath.IsAbs(p) || strings.HasPrefix(configFile, "etcd:") || configFile == "" {
		return p
	}
	return filepath.Join(filepath.Dir(configFile), p)
}

// keepFile records the bytes of a file the TLS settings name.
func (v *validator) keepFile(path string, b []byte) {
	if v.cfg.Files == nil {
		v.cfg.Files = map[string][]byte{}
	}
	v.cfg.Files[path] = b
}

// tlsSettings checks a listen entry's tls table: its values, and that
// every certificate loads, matches its key and has not expired (fewer
// than CertWarnDays left is a warning).
func (v *validator) tlsSettings(owner string, at int, l Listen) {
	t := l.TLS
	if t == nil {
		return
	}
	where := fmt.Sprintf("%s: listen %s: tls", owner, l.Address)
	if len(t.Certificates) == 0 {
		v.errs.add(v.file, at, "%s: certificates must list at least one { cert = \"PATH\", key = \"PATH\" }", where)
	}
	if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
		v.errs.add(v.file, at, "%s: min_version must be \"1.2\" or \"1.3\", not %q", where, t.MinVersion)
	}
	switch t.ClientAuth {
	case ClientAuthNone, ClientAuthRequest:
	case ClientAuthRequire:
		if t.ClientCA == "" {
			v.errs.add(v.file, at, "%s: client_auth = \"require\" needs client_ca, the CA the client certificates are verified with", where)
		}
	default:
		v.errs.add(v.file, at, "%s: client_auth must be \"none\", \"request\" or \"require\", not %q", where, t.ClientAuth)
	}
	if t.HandshakeTimeout <= 0 {
		v.errs.add(v.file, at, "%s: handshake_timeout must be positive", where)
	}
	for _, cf := range t.Certificates {
		if cf.Cert == "" || cf.Key == "" {
			v.errs.add(v.file, at, "%s: a certificate needs both cert and key", where)
			continue
		}
		v.certPair(where, at, cf.Cert, cf.Key)
	}
	if t.ClientCA != "" {
		v.caFile(where+": client_ca", at, t.ClientCA)
	}
}

// certPair loads a certificate and its key, checks them (CertWarnDays
// left is a warning) and keeps their bytes.
func (v *validator) certPair(where string, at int, certFile, keyFile string) {
	p, certPEM, keyPEM, err := certs.Read(certFile, keyFile)
	if err != nil {
		v.errs.add(v.file, at, "%s: %v", where, err)
		return
	}
	warn, err := certs.Check(p.Info, p.Cert.Leaf, time.Now(), CertWarnDays)
	if err != nil {
		v.errs.add(v.file, at, "%s: %v", where, err)
		return
	} else if warn != "" {
		v.cfg.Warnings = append(v.cfg.Warnings, fmt.Sprintf("%s:%d: warning: %s", v.file, at, warn))
	}
	v.keepFile(certFile, certPEM)
	v.keepFile(keyFile, keyPEM)
}

// caFile loads a CA bundle and keeps its bytes.
func (v *validator) caFile(where string, at int, file string) {
	b, err := os.ReadFile(file)
	if err == nil {
		_, err = certs.Pool(b, file)
	}
	if err != nil {
		v.errs.add(v.file, at, "%s: %v", where, err)
		return
	}
	v.keepFile(file, b)
}

// TerminatesTLS: one of the rule's listen addresses has a tls table.
func (r *Rule) TerminatesTLS() bool {
	return slices.ContainsFunc(r.Listen, func(l Listen) bool { return l.TLS != nil })
}
