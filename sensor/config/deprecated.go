package config

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// deprecatedKey is a configuration key renamed in this release: the old
// name is still read, as the new one, for one more release.
type deprecatedKey struct {
	section  []string // path of the mapping holding the key
	old, new string
}

// deprecatedKeys are the renamed keys. flows.snap_len was the bytes
// stored per packet, easily taken for capture.snap_len (the ring's
// capture length); output.collector.drain_timeout was the exporter's
// wait for in-flight acks on stop, unrelated to --drain-timeout.
var deprecatedKeys = []deprecatedKey{
	{section: []string{"flows"}, old: "snap_len", new: "store_bytes"},
	{section: []string{"output", "collector"}, old: "drain_timeout", new: "stop_ack_timeout"},
}

// renameDeprecated rewrites deprecated keys of a YAML document to their
// replacements. It returns raw unchanged when there are none (so error
// line numbers stay those of the file), and one message per renamed key.
// Setting a key under both names is an error. A document that does not
// parse is returned as is, for the decoder to report.
func renameDeprecated(raw []byte) ([]byte, []string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil || len(doc.Content) == 0 {
		return raw, nil, nil
	}
	var msgs []string
	for _, d := range deprecatedKeys {
		renamed, err := d.rename(doc.Content[0])
		if err != nil {
			return raw, nil, err
		}
		if renamed {
			msgs = append(msgs, fmt.Sprintf("%s is deprecated: use %s", d.path(d.old), d.path(d.new)))
		}
	}
	if len(msgs) == 0 {
		return raw, nil, nil
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return raw, nil, fmt.Errorf("rewrite deprecated keys: %w", err)
	}
	return out, msgs, nil
}

// path is the dotted name of key in d's section.
func (d deprecatedKey) path(key string) string {
	p := ""
	for _, s := range d.section {
		p += s + "."
	}
	return p + key
}

// rename renames d.old to d.new in its section of the root mapping; it
// reports whether it did.
func (d deprecatedKey) rename(root *yaml.Node) (bool, error) {
	m := root
	for _, s := range d.section {
		if m = mappingValue(m, s); m == nil {
			return false, nil
		}
	}
	oldKey := mappingKey(m, d.old)
	if oldKey == nil {
		return false, nil
	}
	if mappingKey(m, d.new) != nil {
		return false, fmt.Errorf("%s and %s are both set (%s is the deprecated name of %s)",
			d.path(d.old), d.path(d.new), d.old, d.new)
	}
	oldKey.Value = d.new
	return true, nil
}

// mappingKey returns the key node named key of mapping m, or nil.
func mappingKey(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i]
		}
	}
	return nil
}

// mappingValue returns the value of key in mapping m, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
