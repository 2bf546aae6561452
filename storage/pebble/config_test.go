package pebble

import (
	"testing"
	"time"
)

func TestDefaultConfigValidates(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigRejects(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"bucket":   func(c *Config) { c.TimeBucket = time.Millisecond },
		"long":     func(c *Config) { c.LongFlow = 0 },
		"minfree":  func(c *Config) { c.MinFreeBytes = -1 },
		"cache":    func(c *Config) { c.CacheBytes = 10 },
		"memtable": func(c *Config) { c.MemTableBytes = 2 << 30 },
		"expire":   func(c *Config) { c.ExpireBatchBlocks = 0 },
		"l0 low":   func(c *Config) { c.L0CompactionThreshold = 1 },
		"l0 high":  func(c *Config) { c.L0CompactionThreshold = 65 },
	} {
		c := DefaultConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
}
