package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/tapir-sensor/tapir/collector/api/client"
	"github.com/tapir-sensor/tapir/collector/registry"
)

func init() {
	register(&command{name: "sensors", summary: "list the collector's sensors and their state", run: runSensors})
}

// runSensors: tapir sensors [--json] [--watch [--interval D]].
func runSensors(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("tapir sensors", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var srv serverFlags
	srv.register(fs)
	asJSON := fs.Bool("json", false, "print the registry as JSON")
	watch := fs.Bool("watch", false, "redraw until interrupted")
	interval := fs.Duration("interval", 2*time.Second, "with --watch: refresh interval")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *interval <= 0 {
		return fmt.Errorf("%w: --interval must be positive", errUsage)
	}
	c, err := srv.client()
	if err != nil {
		return err
	}
	for {
		list, err := c.Sensors(ctx)
		if err != nil {
			if *watch && ctx.Err() != nil {
				return nil
			}
			return err
		}
		if *watch {
			fmt.Fprint(e.stdout, "\x1b[H\x1b[2J") // clear the screen
			fmt.Fprintf(e.stdout, "%s  %d sensors\n\n", time.Now().Format(time.TimeOnly), len(list))
		}
		if *asJSON {
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(list); err != nil {
				return err
			}
		} else if err := printSensors(e.stdout, list, time.Now()); err != nil {
			return err
		}
		if !*watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

// printSensors writes one table row per sensor.
func printSensors(w io.Writer, list []registry.SensorStatus, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SENSOR\tSTATE\tLAST SEEN\tREMOTE\tBATCHES\tFLOWS\tBLOCKS\tBYTES\tDURABLE SEQ\tERRORS\tLAST ERROR")
	for _, s := range list {
		state := "down"
		if s.Connected {
			state = "up"
		}
		seen := "never"
		if !s.LastSeen.IsZero() {
			seen = now.Sub(s.LastSeen).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%d\t%d\t%s\n", s.ID, state, seen, s.RemoteAddr,
			s.Batches, s.Flows, s.Blocks, client.HumanBytes(float64(s.Bytes)), s.DurableSeq,
			s.Rejected+s.StoreErrors, s.LastError)
	}
	return tw.Flush()
}
