package config

import (
	"bytes"
	_ "embed"
)

// defaultsYAML is DefaultConfig() as a commented YAML document, written by make
// docs (internal/configdoc/gen) from the config structs and their doc
// comments; a test fails when it is stale.
//
//go:embed defaults.yaml
var defaultsYAML []byte

// DefaultsYAML returns the default configuration as a commented YAML
// file (what tapir-sensor check-config --print-defaults prints): every key
// with its doc comment. It loads back as DefaultConfig().
func DefaultsYAML() []byte { return bytes.Clone(defaultsYAML) }
