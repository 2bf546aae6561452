package main

import (
	"context"

	"github.com/tapir-sensor/tapir/internal/tlsconfig"
)

func init() {
	register(&command{
		name:    "certs",
		summary: "create a development CA and issue server, sensor and user certificates",
		run: func(_ context.Context, e *env, args []string) error {
			return tlsconfig.RunCertsCommand(args, e.stdout)
		},
	})
}
