package inspect

import "encoding/binary"

// PP2_TYPE_SSL (PROXY protocol v2, section 2.2.5): what g6 tells a server
// behind it about TLS it terminated. The value is a client byte (flags),
// a 32-bit verify result (0 = the client certificate verified, or none was
// asked for) and sub-TLVs: the version ("TLSv1.3", as OpenSSL names it, so
// servers that read HAProxy's headers read g6's), the cipher (Go's IANA
// name) and, with a client certificate, its subject's common name.
const (
	tlvSSL           = 0x20
	subTLVSSLVersion = 0x21
	subTLVSSLCN      = 0x22
	subTLVSSLCipher  = 0x23

	// SSLClientSSL etc. are the client byte's flags.
	SSLClientSSL      = 0x01 // the client connected over TLS
	SSLClientCertConn = 0x02 // it sent a certificate on this connection
	SSLClientCertSess = 0x04 // it sent one at least once in this session (resumed included)

	// maxSSLField bounds each string the TLV carries, so a client's long
	// subject cannot grow a header past proxyHeaderMax.
	maxSSLField = 255
)

// MaxSSLTLV is the most AppendSSLTLV adds.
const MaxSSLTLV = 3 + 1 + 4 + 3*(3+maxSSLField)

// SSL is what AppendSSLTLV writes: the TLS g6 terminated.
type SSL struct {
	Version  string // "TLSv1.2", "TLSv1.3"
	Cipher   string
	CN       string // the client certificate's subject CN; "" = none
	CertConn bool   // a client certificate came on this connection
	CertSess bool   // one came in the session (this connection or the one resumed)
	Verified bool   // the certificate verified against client_ca (or none was asked for)
}

// AppendSSLTLV appends a PP2_TYPE_SSL TLV describing s (strings cut at
// maxSSLField bytes).
func AppendSSLTLV(dst []byte, s SSL) []byte {
	start := len(dst)
	dst = append(dst, tlvSSL, 0, 0)
	client := byte(SSLClientSSL)
	if s.CertConn {
		client |= SSLClientCertConn
	}
	if s.CertSess {
		client |= SSLClientCertSess
	}
	dst = append(dst, client)
	verify := uint32(0)
	if !s.Verified {
		verify = 1
	}
	dst = binary.BigEndian.AppendUint32(dst, verify)
	dst = appendSub(dst, subTLVSSLVersion, s.Version)
	if s.CN != "" {
		dst = appendSub(dst, subTLVSSLCN, s.CN)
	}
	dst = appendSub(dst, subTLVSSLCipher, s.Cipher)
	binary.BigEndian.PutUint16(dst[start+1:], uint16(len(dst)-start-3))
	return dst
}

func appendSub(dst []byte, typ byte, v string) []byte {
	v = v[:min(len(v), maxSSLField)]
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(v)))
	return append(dst, v...)
}

// ParseSSLTLV finds the PP2_TYPE_SSL TLV among a v2 header's TLVs
// (Proxy.TLVs) and reads it; false if there is none or it is malformed.
func ParseSSLTLV(tlvs []byte) (SSL, bool) {
	for len(tlvs) >= 3 {
		l := int(binary.BigEndian.Uint16(tlvs[1:3]))
		if 3+l > len(tlvs) {
			return SSL{}, false
		}
		v := tlvs[3 : 3+l]
		if tlvs[0] == tlvSSL {
			return parseSSL(v)
		}
		tlvs = tlvs[3+l:]
	}
	return SSL{}, false
}

func parseSSL(v []byte) (SSL, bool) {
	if len(v) < 5 {
		return SSL{}, false
	}
	s := SSL{CertConn: v[0]&SSLClientCertConn != 0, CertSess: v[0]&SSLClientCertSess != 0,
		Verified: binary.BigEndian.Uint32(v[1:5]) == 0}
	for sub := v[5:]; len(sub) > 0; {
		if len(sub) < 3 {
			return SSL{}, false
		}
		l := int(binary.BigEndian.Uint16(sub[1:3]))
		if 3+l > len(sub) {
			return SSL{}, false
		}
		val := string(sub[3 : 3+l])
		switch sub[0] {
		case subTLVSSLVersion:
			s.Version = val
		case subTLVSSLCN:
			s.CN = val
		case subTLVSSLCipher:
			s.Cipher = val
		}
		sub = sub[3+l:]
	}
	return s, true
}
