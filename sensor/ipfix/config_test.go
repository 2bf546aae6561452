package ipfix

import (
	"testing"
	"time"
)

func TestDefaultConfigurationValidates(t *testing.T) {
	cfg := DefaultConfiguration()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Collector = "127.0.0.1:4739"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := New(DefaultConfiguration(), Dependencies{}); err == nil {
		t.Error("New accepted an empty collector")
	}
	for name, bad := range map[string]func(c *Configuration){
		"collector":    func(c *Configuration) { c.Collector = "no-port" },
		"mtu small":    func(c *Configuration) { c.MTU = 100 },
		"mtu large":    func(c *Configuration) { c.MTU = 70000 },
		"refresh":      func(c *Configuration) { c.TemplateRefresh = 0 },
		"refresh msgs": func(c *Configuration) { c.TemplateRefreshMessages = -1 },
		"pen":          func(c *Configuration) { c.EnterpriseNumber = 0 },
		"flush":        func(c *Configuration) { c.FlushInterval = -time.Second },
		"queue":        func(c *Configuration) { c.QueueMessages = 0 },
		"queue wait":   func(c *Configuration) { c.QueueWait = -1 },
	} {
		c := DefaultConfiguration()
		bad(&c)
		if c.Validate() == nil {
			t.Errorf("%s: invalid configuration accepted: %+v", name, c)
		}
	}
}
