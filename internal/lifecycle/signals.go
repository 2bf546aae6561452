package lifecycle

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Signals returns a context cancelled by SIGINT or SIGTERM (the end of a
// run) and a channel that receives SIGHUP (a reload); stop undoes both.
func Signals() (ctx context.Context, hup <-chan os.Signal, stop func()) {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	h := make(chan os.Signal, 1)
	signal.Notify(h, syscall.SIGHUP)
	return ctx, h, func() {
		signal.Stop(h)
		cancel()
	}
}
