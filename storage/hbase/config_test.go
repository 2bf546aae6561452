package hbase

import (
	"bytes"
	"strings"
	"testing"
)

func TestDefaultConfigValidates(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrorsNameFields(t *testing.T) {
	c := DefaultConfig()
	c.ZooKeeper, c.SaltRegions, c.PacketCompression, c.Concurrency = "", 0, "BROTLI", 1
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config validated")
	}
	for _, f := range []string{"zookeeper", "salt_regions", "packet_compression", "concurrency"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not name %s", err, f)
		}
	}
}

func TestSplitKeysSortedAndCoverSalts(t *testing.T) {
	for _, n := range []int{1, 4, 16, 256} {
		keys := SplitKeys(n)
		for i := 1; i < len(keys); i++ {
			if bytes.Compare(keys[i-1], keys[i]) >= 0 {
				t.Fatalf("salt regions %d: split keys not strictly increasing at %d: %x %x", n, i, keys[i-1], keys[i])
			}
		}
		salted := 0
		for _, k := range keys {
			if len(k) == 2 && k[0] == 'b' {
				salted++
			}
		}
		if salted != n-1 {
			t.Fatalf("salt regions %d: %d salt split keys", n, salted)
		}
	}
}
