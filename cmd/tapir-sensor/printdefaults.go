package main

import (
	"fmt"
	"io"

	"github.com/tapir-sensor/tapir/internal/configdoc"
	"github.com/tapir-sensor/tapir/sensor/config"
)

// withPrintDefaults runs run, except for check-config --print-defaults,
// which prints the default configuration as a commented YAML file (every
// key with its doc comment; docs/config-reference.md is the same as a
// table) and exits 0.
func withPrintDefaults(run func([]string, io.Writer, io.Writer) int, args []string, stdout, stderr io.Writer) int {
	if !configdoc.PrintDefaultsRequested(args) {
		return run(args, stdout, stderr)
	}
	if _, err := stdout.Write(config.DefaultsYAML()); err != nil {
		fmt.Fprintf(stderr, "tapir-sensor: %v\n", err)
		return 1
	}
	return 0
}
