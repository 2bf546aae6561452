package main

import (
	"fmt"
	"io"

	buildversion "github.com/tapir-sensor/tapir/internal/version"
)

// printVersion prints the build's version, commit and Go version for
// tapir-sensor --version and reports whether it did.
func printVersion(args []string, stdout io.Writer) bool {
	if !buildversion.Requested(args) {
		return false
	}
	fmt.Fprintln(stdout, buildversion.String("tapir-sensor"))
	return true
}
