package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/tapir-sensor/tapir/internal/tlsconfig"
)

func init() {
	register(&command{
		name:    "certs",
		summary: "create a development CA and issue server, sensor and user certificates",
		run: func(_ context.Context, e *env, args []string) error {
			if err := checkClientRole(args); err != nil {
				return err
			}
			return tlsconfig.RunCertsCommand(args, e.stdout)
		},
	})
}

// checkClientRole refuses `tapir certs client -role R` with a role the
// collector's API does not know (the default, flows:read, is one).
func checkClientRole(args []string) error {
	if len(args) == 0 || args[0] != "client" {
		return nil
	}
	for i, a := range args[1:] {
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "role" {
			continue
		}
		if !hasVal && i+2 < len(args) {
			val = args[i+2]
		}
		if !slices.Contains(apiRoles, val) {
			return fmt.Errorf("%w: unknown role %q (roles: %s)", errUsage, val, strings.Join(apiRoles, ", "))
		}
	}
	return nil
}
