package ipfix

import (
	"testing"
	"time"
)

func TestDefaultConfigValidates(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Collector = "127.0.0.1:4739"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := New(DefaultConfig(), Dependencies{}); err == nil {
		t.Error("New accepted an empty collector")
	}
	for name, bad := range map[string]func(c *Config){
		"collector":    func(c *Config) { c.Collector = "no-port" },
		"mtu small":    func(c *Config) { c.MTU = 100 },
		"mtu large":    func(c *Config) { c.MTU = 70000 },
		"refresh":      func(c *Config) { c.TemplateRefresh = 0 },
		"refresh msgs": func(c *Config) { c.TemplateRefreshMessages = -1 },
		"pen":          func(c *Config) { c.EnterpriseNumber = 0 },
		"flush":        func(c *Config) { c.FlushInterval = -time.Second },
		"queue":        func(c *Config) { c.QueueMessages = 0 },
		"queue wait":   func(c *Config) { c.QueueWait = -1 },
	} {
		c := DefaultConfig()
		bad(&c)
		if c.Validate() == nil {
			t.Errorf("%s: invalid configuration accepted: %+v", name, c)
		}
	}
}
