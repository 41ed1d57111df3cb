package conf

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Check types: what a health check speaks to the server.
const (
	CheckTCP   = "tcp"   // connect, optionally send and expect bytes
	CheckHTTP  = "http"  // a request; the status (and body) decide
	CheckTLS   = "tls"   // a handshake; optionally the certificate's days left
	CheckRedis = "redis" // PING; optionally the replication role
	CheckPgSQL = "pgsql" // a startup message; optionally a login and the recovery state
	CheckMySQL = "mysql" // the server's greeting
	CheckSMTP  = "smtp"  // the banner and EHLO
	CheckDNS   = "dns"   // a query over TCP
)

// CheckTypes are the check types, in the order the docs list them.
var CheckTypes = []string{CheckTCP, CheckHTTP, CheckTLS, CheckRedis, CheckPgSQL, CheckMySQL, CheckSMTP, CheckDNS}

// Roles a check can require.
const (
	RoleMaster  = "master"  // redis: INFO replication says role:master
	RolePrimary = "primary" // pgsql: pg_is_in_recovery() is false
	RoleStandby = "standby" // pgsql: pg_is_in_recovery() is true
)

// HealthCheck is a rule's active check of its servers, run by the master.
type HealthCheck struct {
	Type     string
	Interval Duration
	Timeout  Duration
	Rise     int    // passes in a row to come back
	Fall     int    // failures in a row to go down
	Send     string `json:",omitempty"` // tcp: bytes to send after connecting ("" = connect only)
	Expect   string `json:",omitempty"` // tcp: the answer must start with these bytes ("" = no check)
	// http
	Method       string       `json:",omitempty"`
	Path         string       `json:",omitempty"`
	Host         string       `json:",omitempty"` // "" = the server's address
	ExpectStatus StatusRanges `json:",omitempty"`
	ExpectBody   string       `json:",omitempty"` // a substring of the first MaxCheckBody bytes
	TLS          bool         `json:",omitempty"` // http over TLS
	// tls, and http over TLS: the server's tls table, else these.
	Verify     bool   `json:",omitempty"`
	ServerName string `json:",omitempty"`
	CA         string `json:",omitempty"`
	MinDays    int    `json:",omitempty"` // tls: down when the certificate has fewer days left
	// redis, pgsql
	Role     string `json:",omitempty"`
	User     string `json:",omitempty"`
	Password string `json:",omitempty"`
	Database string `json:",omitempty"`
	Name     string `json:",omitempty"` // dns: the name queried
	// problems are what resolve found wrong, for the validator to report
	// at a server entry's line.
	problems []error
}

// MaxCheckBody bounds what an http check reads of a body.
const MaxCheckBody = 64 << 10

// StatusRanges are HTTP statuses a check takes: from a list of numbers
// and "first-last" strings (expect_status = [200, "300-399"]).
type StatusRanges [][2]int

// Has says whether code is in one of the ranges.
func (r StatusRanges) Has(code int) bool {
	for _, x := range r {
		if code >= x[0] && code <= x[1] {
			return true
		}
	}
	return false
}

// UnmarshalTOML reads a status, a "first-last" range or a list of them.
func (r *StatusRanges) UnmarshalTOML(v any) error {
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	*r = nil
	for _, e := range list {
		var lo, hi int
		switch x := e.(type) {
		case int64:
			lo, hi = int(x), int(x)
		case string:
			a, b, found := strings.Cut(x, "-")
			var err1, err2 error
			lo, err1 = strconv.Atoi(strings.TrimSpace(a))
			hi, err2 = lo, nil
			if found {
				hi, err2 = strconv.Atoi(strings.TrimSpace(b))
			}
			if err1 != nil || err2 != nil {
				return fmt.Errorf("expect_status %q is not a status or a range like \"200-399\"", x)
			}
		default:
			return fmt.Errorf("expect_status takes statuses and \"first-last\" ranges, not %v", e)
		}
		if lo < 100 || hi > 599 || lo > hi {
			return fmt.Errorf("expect_status %d-%d is not a range of HTTP statuses (100-599)", lo, hi)
		}
		*r = append(*r, [2]int{lo, hi})
	}
	return nil
}

// checkKeys are the keys each type takes beyond the common ones.
var checkKeys = map[string][]string{
	CheckTCP:   {"send", "expect"},
	CheckHTTP:  {"method", "path", "host", "expect_status", "expect_body", "tls", "verify", "server_name", "ca"},
	CheckTLS:   {"verify", "server_name", "ca", "min_days"},
	CheckRedis: {"role", "user", "password"},
	CheckPgSQL: {"role", "user", "password", "database"},
	CheckMySQL: {},
	CheckSMTP:  {},
	CheckDNS:   {"name"},
}

// resolve applies the defaults (paths relative to the config file) and
// checks the keys against the type; the validator loads the ca.
func (f *fileCheck) resolve(file string) (*HealthCheck, []error) {
	c := &HealthCheck{Type: deref(f.Type, CheckTCP), Interval: deref(f.Interval, Duration(2e9)), Timeout: deref(f.Timeout, Duration(1e9)),
		Rise: deref(f.Rise, 2), Fall: deref(f.Fall, 3), Send: deref(f.Send, ""), Expect: deref(f.Expect, ""),
		Method: deref(f.Method, "GET"), Path: deref(f.Path, "/"), Host: deref(f.Host, ""),
		ExpectStatus: deref(f.ExpectStatus, StatusRanges{{200, 399}}), ExpectBody: deref(f.ExpectBody, ""),
		TLS: deref(f.TLS, false), ServerName: deref(f.ServerName, ""), CA: filePath(file, deref(f.CA, "")), MinDays: deref(f.MinDays, 0),
		Role: deref(f.Role, ""), User: deref(f.User, ""), Password: deref(f.Password, ""), Database: deref(f.Database, ""),
		Name: deref(f.Name, "")}
	// A tls check verifies the chain only against a CA it is given
	// (internal servers often have private ones); http over TLS verifies
	// unless told not to.
	c.Verify = deref(f.Verify, c.Type != CheckTLS || c.CA != "")
	var errs []error
	keys, ok := checkKeys[c.Type]
	if !ok {
		return c, []error{fmt.Errorf("type %q is not one of %s", c.Type, strings.Join(CheckTypes, ", "))}
	}
	for key, set := range f.typeKeys() {
		if set && !slices.Contains(keys, key) {
			errs = append(errs, fmt.Errorf("%s does not apply to type %q", key, c.Type))
		}
	}
	if c.Interval < Duration(1e8) || c.Timeout <= 0 || c.Rise < 1 || c.Fall < 1 {
		errs = append(errs, errors.New("needs interval of at least 100ms, a timeout, rise >= 1 and fall >= 1"))
	}
	switch c.Type {
	case CheckHTTP:
		if !validToken(c.Method) {
			errs = append(errs, fmt.Errorf("method %q is not an HTTP method", c.Method))
		}
		if !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, " \r\n") {
			errs = append(errs, fmt.Errorf("path %q must start with / and hold no space or line break", c.Path))
		}
		if strings.ContainsAny(c.Host, " \r\n") {
			errs = append(errs, fmt.Errorf("host %q holds a space or a line break", c.Host))
		}
		if c.ExpectStatus == nil {
			errs = append(errs, errors.New("expect_status is empty"))
		}
	case CheckTLS:
		if c.MinDays < 0 {
			errs = append(errs, fmt.Errorf("min_days must be 0 or more, not %d", c.MinDays))
		}
		if c.Verify && c.CA == "" {
			errs = append(errs, errors.New("verify = true needs a ca (the system's CAs rarely sign an internal server)"))
		}
	case CheckRedis:
		if c.Role != "" && c.Role != RoleMaster {
			errs = append(errs, fmt.Errorf("role %q: a redis check knows only %q", c.Role, RoleMaster))
		}
		if c.User != "" && c.Password == "" {
			errs = append(errs, errors.New("user needs a password (AUTH user password)"))
		}
	case CheckPgSQL:
		if c.Role != "" && c.Role != RolePrimary && c.Role != RoleStandby {
			errs = append(errs, fmt.Errorf("role %q is not %q or %q", c.Role, RolePrimary, RoleStandby))
		}
		if c.Role != "" && c.User == "" {
			errs = append(errs, errors.New("role needs a user to log in with"))
		}
	case CheckDNS:
		if c.Name == "" {
			errs = append(errs, errors.New("type \"dns\" needs a name to query"))
		}
	}
	c.problems = errs
	return c, errs
}

// resolveQuiet is resolve for a server's table: nil stays nil, and the
// problems wait in the result for the validator (serverOptions).
func (f *fileCheck) resolveQuiet(file string) *HealthCheck {
	if f == nil {
		return nil
	}
	c, _ := f.resolve(file)
	return c
}

// typeKeys says which type-specific keys were written.
func (f *fileCheck) typeKeys() map[string]bool {
	return map[string]bool{
		"send": f.Send != nil, "expect": f.Expect != nil, "method": f.Method != nil, "path": f.Path != nil,
		"host": f.Host != nil, "expect_status": f.ExpectStatus != nil, "expect_body": f.ExpectBody != nil,
		"tls": f.TLS != nil, "verify": f.Verify != nil, "server_name": f.ServerName != nil, "ca": f.CA != nil,
		"min_days": f.MinDays != nil, "role": f.Role != nil, "user": f.User != nil, "password": f.Password != nil,
		"database": f.Database != nil, "name": f.Name != nil,
	}
}

// validToken: an HTTP method is a token (RFC 9110 §5.6.2).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// AgentCheck asks an agent on each server (HAProxy's agent protocol) for
// one line: its state (up, down, drain, maint), a weight as a percentage
// of the configured one, a connection limit.
type AgentCheck struct {
	Port     int // on the server's IP
	Interval Duration
	Timeout  Duration
	Send     string `json:",omitempty"` // written before the line is read ("" = nothing)
}

func (f *fileAgent) resolve() (*AgentCheck, error) {
	a := &AgentCheck{Port: deref(f.Port, 0), Interval: deref(f.Interval, Duration(2e9)), Timeout: deref(f.Timeout, Duration(1e9)), Send: deref(f.Send, "")}
	switch {
	case a.Port < 1 || a.Port > 65535:
		return a, fmt.Errorf("port must be 1-65535, not %d", a.Port)
	case a.Interval < Duration(1e8) || a.Timeout <= 0:
		return a, errors.New("needs interval of at least 100ms and a timeout")
	}
	return a, nil
}

// decodeCheck reads a server entry's health_check table (server entries
// are decoded by hand, decodeEntry): through the TOML decoder again, so
// the keys and their types are read exactly as on a rule.
func decodeCheck(val any) (*fileCheck, error) {
	m, ok := val.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("health_check must be a table { type = \"http\", … }, not %T", val)
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(m); err != nil {
		return nil, fmt.Errorf("health_check: %w", err)
	}
	var fc fileCheck
	md, err := toml.Decode(buf.String(), &fc)
	if err != nil {
		return nil, fmt.Errorf("health_check: %w", err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		return nil, fmt.Errorf("health_check.%s: unknown key", u[0])
	}
	return &fc, nil
}
