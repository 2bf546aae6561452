package main

import (
	"fmt"
	"io"

	"github.com/tapir-sensor/tapir/internal/version"
)

// printVersion prints the build's version, commit and Go version for
// tapir-collector --version and reports whether it did.
func printVersion(args []string, stdout io.Writer) bool {
	if !version.Requested(args) {
		return false
	}
	fmt.Fprintln(stdout, version.String("tapir-collector"))
	return true
}
