package admin

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"g6/certs"
	"g6/conf"
)

// Cert is one certificate the config uses, with where (show certs).
type Cert struct {
	certs.Info
	DaysLeft int `json:"days_left"`
	// State is "ok", "expiring" (fewer than conf.CertWarnDays left),
	// "expired" or "not yet valid".
	State string `json:"state"`
	// Used are the places that serve it: "RULE listen ADDRESS".
	Used []string `json:"used"`
}

// Certs lists the certificates of cfg, each file once, in config order,
// parsed from the bytes the workers were given (conf.Config.Files).
func Certs(cfg *conf.Config, now time.Time) []Cert {
	var out []Cert
	for _, r := range cfg.Rules {
		for _, l := range r.Listen {
			if l.TLS == nil {
				continue
			}
			for _, cf := range l.TLS.Certificates {
				use := fmt.Sprintf("%s listen %s", r.ID, l.Address)
				if i := slices.IndexFunc(out, func(c Cert) bool { return c.File == cf.Cert }); i >= 0 {
					out[i].Used = append(out[i].Used, use)
					continue
				}
				p, err := certs.Parse(cfg.Files[cf.Cert], cfg.Files[cf.Key], cf.Cert, cf.Key)
				if err != nil {
					continue // the config was checked with these bytes
				}
				c := Cert{Info: p.Info, DaysLeft: p.Info.DaysLeft(now), State: "ok", Used: []string{use}}
				switch warn, err := certs.Check(p.Info, p.Cert.Leaf, now, conf.CertWarnDays); {
				case errors.Is(err, certs.ErrExpired):
					c.State = "expired"
				case err != nil:
					c.State = "not yet valid"
				case warn != "":
					c.State = "expiring"
				}
				out = append(out, c)
			}
		}
	}
	return out
}

func showCerts(cfg *conf.Config, now time.Time) (any, string) {
	list := Certs(cfg, now)
	doc := map[string]any{"certs": list}
	if len(list) == 0 {
		return doc, "no certificates\n"
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tSUBJECT\tNAMES\tNOT AFTER\tDAYS LEFT\tSTATE\tUSED BY")
	for _, c := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", c.File, c.Subject, strings.Join(c.Names, ","),
			c.NotAfter.UTC().Format(time.RFC3339), c.DaysLeft, c.State, strings.Join(c.Used, "; "))
	}
	tw.Flush()
	return doc, b.String()
}
