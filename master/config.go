package master

import (
	"os"

	"g6/conf"
	"g6/fleet"
	"g6/logging"
)

// loadConfig reads the config (the file, or the fleet's with --etcd) and
// applies the command-line overrides.
func (m *Master) loadConfig() (*conf.Config, error) {
	cfg, err := m.readConfig()
	if err != nil {
		return nil, err
	}
	if m.opts.LogLevel != "" {
		cfg.Global.LogLevel = m.opts.LogLevel
	}
	if m.opts.LogFile != "" {
		cfg.Global.LogFile = m.opts.LogFile
	}
	if _, err := logging.Level(cfg.Global.LogLevel); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (m *Master) readConfig() (*conf.Config, error) {
	if len(m.opts.Etcd) == 0 {
		return conf.Load(m.opts.ConfigPath)
	}
	text, err := fleet.FetchConfig(m.opts.Etcd, m.opts.Prefix)
	if err != nil {
		return nil, err
	}
	cfg, err := conf.Parse("etcd:"+m.opts.Prefix+"/config", text)
	if err != nil {
		return nil, err
	}
	c := cfg.Cluster
	if c == nil {
		c = &conf.Cluster{Timeout: conf.DefaultEtcdTimeout}
		c.Node, _ = os.Hostname()
	}
	c.Etcd, c.Prefix = m.opts.Etcd, m.opts.Prefix
	if m.opts.Node != "" {
		c.Node = m.opts.Node
	}
	cfg.Cluster = c
	return cfg, nil
}
