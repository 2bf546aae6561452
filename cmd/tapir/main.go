// Command tapir is the investigator's tool: it pulls packets out of
// tapir's stores as pcap. Each subcommand lives in its own file and
// registers itself in init with register; main only dispatches.
//
//	tapir pcap --blocks DIR -o FILE [--format pcap|pcapng] [--community-id ID | --flow-id ID]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"

	"github.com/tapir-sensor/tapir/internal/version"
)

// command is one subcommand. run gets the arguments after the
// subcommand name.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what a subcommand may use instead of process globals.
type env struct {
	stdout, stderr io.Writer
	log            *slog.Logger
}

var commands = map[string]*command{}

// register adds a subcommand; call it from an init function.
func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("tapir: duplicate command " + c.name)
	}
	commands[c.name] = c
}

// errUsage marks errors caused by the command line (exit status 2).
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tapir <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nrun 'tapir <command> -h' for a command's flags")
}

// run executes the command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if version.Requested(args) || args[0] == "version" {
		fmt.Fprintln(stdout, version.String("tapir"))
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "tapir: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	e := &env{stdout: stdout, stderr: stderr, log: slog.New(slog.NewTextHandler(stderr, nil))}
	err := c.run(ctx, e, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errNoMatch):
		return 1 // said on stderr already
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "tapir %s: %v\n", c.name, err)
		return 2
	}
	fmt.Fprintf(stderr, "tapir %s: %v\n", c.name, strings.TrimPrefix(err.Error(), c.name+": "))
	return 1
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
