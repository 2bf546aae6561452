package capture

import "testing"

func TestDefaultLiveConfigValidates(t *testing.T) {
	if err := DefaultLiveConfig("eth0").Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLiveConfigRejects(t *testing.T) {
	for name, mod := range map[string]func(*LiveConfig){
		"no interface":       func(c *LiveConfig) { c.Interface = "" },
		"block below snap":   func(c *LiveConfig) { c.BlockSize = 256 << 10 },
		"odd block":          func(c *LiveConfig) { c.BlockSize = 1<<20 + 100 },
		"infinite poll":      func(c *LiveConfig) { c.PollTimeout = -1 },
		"one block":          func(c *LiveConfig) { c.NumBlocks = 1 },
		"snap too large":     func(c *LiveConfig) { c.SnapLen = 1 << 20 },
		"frame not dividing": func(c *LiveConfig) { c.FrameSize = 3 << 10 },
	} {
		c := DefaultLiveConfig("eth0")
		mod(&c)
		if c.Validate() == nil {
			t.Errorf("%s: validated", name)
		}
	}
}
