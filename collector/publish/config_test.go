package publish

import (
	"strings"
	"testing"
)

func TestDefaultConfigValidates(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Enabled() {
		t.Fatal("publishing enabled without brokers")
	}
}

func TestConfigErrorsNameFields(t *testing.T) {
	c := DefaultConfig()
	c.Brokers = []string{"nohostport"}
	c.Format, c.Compression, c.Topics.Flows = "xml", "brotli", "bad topic"
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config validated")
	}
	for _, f := range []string{"brokers", "format", "compression", "topics.flows"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not name %s", err, f)
		}
	}
}
