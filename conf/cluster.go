package conf

import (
	"fmt"
	"net/url"
	"os"
	"strings"
)

// resolveCluster fills [cluster] and checks it; errors go to errs at the
// key's line.
func resolveCluster(file string, fc *fileCluster, loc *locator, errs *ErrorList) *Cluster {
	if fc == nil {
		return nil
	}
	c := &Cluster{Etcd: fc.Etcd, Prefix: deref(fc.Prefix, ""), Node: deref(fc.Node, ""),
		CAFile: deref(fc.CAFile, ""), CertFile: deref(fc.CertFile, ""), KeyFile: deref(fc.KeyFile, ""),
		Username: deref(fc.Username, ""), Password: deref(fc.Password, ""), Timeout: deref(fc.Timeout, DefaultEtcdTimeout)}
	at := func(key string) int { return loc.key("cluster", 0, key) }
	if len(c.Etcd) == 0 {
		errs.add(file, at("etcd"), "cluster: etcd must list at least one endpoint, e.g. [\"http://127.0.0.1:2379\"]")
	}
	for _, e := range c.Etcd {
		if err := checkEndpoint(e); err != nil {
			errs.add(file, at("etcd"), "cluster: etcd endpoint %q: %v", e, err)
		}
	}
	if err := checkPrefix(c.Prefix); err != nil {
		errs.add(file, at("prefix"), "cluster: prefix %q: %v", c.Prefix, err)
	}
	c.Prefix = strings.TrimSuffix(c.Prefix, "/")
	if c.Node == "" {
		c.Node, _ = os.Hostname()
	}
	if err := CheckNodeName(c.Node); err != nil {
		errs.add(file, at("node"), "cluster: node %q: %v", c.Node, err)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs.add(file, at("cert_file"), "cluster: cert_file and key_file go together")
	}
	if c.Password != "" && c.Username == "" {
		errs.add(file, at("password"), "cluster: password without username")
	}
	if c.Timeout <= 0 {
		errs.add(file, at("dial_timeout"), "cluster: dial_timeout must be positive")
	}
	return c
}

// checkEndpoint accepts what etcd's client dials: http:// or https:// and
// a host with a port.
func checkEndpoint(e string) error {
	if !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") {
		return fmt.Errorf("want http:// or https://")
	}
	u, err := url.Parse(e)
	switch {
	case err != nil:
		return err
	case u.Port() == "" || u.Hostname() == "":
		return fmt.Errorf("want a host and a port")
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil:
		return fmt.Errorf("want only scheme, host and port (credentials go in username/password)")
	}
	return nil
}

// checkPrefix: a key prefix the fleet's keys go under.
func checkPrefix(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("must be set: every node with the same prefix is one fleet")
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("must start with /")
	case strings.Contains(p, "//") || strings.IndexFunc(p, notPrintable) >= 0 || strings.ContainsAny(p, " \t"):
		return fmt.Errorf("must be printable, without blanks or //")
	}
	return nil
}

// CheckNodeName says whether a node name can be an etcd key element and an
// admin reply word.
func CheckNodeName(n string) error {
	if n == "" || len(n) > 64 || strings.ContainsAny(n, "/ |\t") || strings.IndexFunc(n, notPrintable) >= 0 {
		return fmt.Errorf("must be 1-64 printable characters without '/', '|' or blanks")
	}
	return nil
}
