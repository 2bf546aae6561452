package pebble

import (
	"os"
	"path/filepath"
	"strings"
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
		"bucket":     func(c *Config) { c.TimeBucket = time.Millisecond },
		"long":       func(c *Config) { c.LongFlow = 0 },
		"minfree":    func(c *Config) { c.MinFreeBytes = -1 },
		"cache":      func(c *Config) { c.CacheBytes = 10 },
		"memtable":   func(c *Config) { c.MemTableBytes = 2 << 30 },
		"expire":     func(c *Config) { c.ExpireBatchBlocks = 0 },
		"l0 low":     func(c *Config) { c.L0CompactionThreshold = 1 },
		"l0 high":    func(c *Config) { c.L0CompactionThreshold = 65 },
		"lbase low":  func(c *Config) { c.LBaseMaxBytes = 1 << 20 },
		"lbase high": func(c *Config) { c.LBaseMaxBytes = 128 << 30 },
	} {
		c := DefaultConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
}

// TestPebbleGetsConfiguredSizes: the memtable size, L0 threshold and base
// level size configured are the ones Pebble runs with (its OPTIONS file).
func TestPebbleGetsConfiguredSizes(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.MemTableBytes, cfg.L0CompactionThreshold, cfg.LBaseMaxBytes = 3<<20, 6, 48<<20
	openTest(t, dir, cfg).Close()
	names, err := filepath.Glob(filepath.Join(dir, "OPTIONS-*"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no OPTIONS file: %v", err)
	}
	opts, err := os.ReadFile(names[len(names)-1])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mem_table_size=3145728", "l0_compaction_threshold=6", "lbase_max_bytes=50331648"} {
		if !strings.Contains(string(opts), "\n  "+want+"\n") {
			t.Errorf("Pebble's options lack %q:\n%s", want, opts)
		}
	}
}
