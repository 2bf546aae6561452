// Package version reports what build a tapir binary is: the release
// version (set with -ldflags "-X github.com/tapir-sensor/tapir/internal/version.Version=v1.2.3"),
// the VCS commit and the Go version, as every binary's --version prints.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release version, set at link time; "dev" otherwise.
var Version = "dev"

// Commit is the VCS revision, set at link time; when empty, String takes
// it from the build information the go command records.
var Commit = ""

// String returns "NAME VERSION (commit C[, modified]) GOVERSION".
func String(name string) string {
	commit, dirty := Commit, false
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && commit == "":
				commit = s.Value
			case s.Key == "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if commit == "" {
		commit = "unknown"
	} else if dirty {
		commit += ", modified"
	}
	return fmt.Sprintf("%s %s (commit %s) %s", name, Version, commit, runtime.Version())
}

// Requested reports whether the command line asks for the version: its
// first argument is --version or -version.
func Requested(args []string) bool {
	return len(args) > 0 && (args[0] == "--version" || args[0] == "-version")
}
