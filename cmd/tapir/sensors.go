package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/tapir-sensor/tapir/collector/api/client"
	"github.com/tapir-sensor/tapir/collector/registry"
)

func init() {
	register(&command{name: "sensors", summary: "list the collector's sensors and their state", run: runSensors})
}

// runSensors: tapir sensors [--output table|json|csv] [--watch [--interval D]].
func runSensors(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("tapir sensors", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var srv serverFlags
	srv.register(fs)
	asJSON := fs.Bool("json", false, "same as --output json")
	output := fs.String("output", "table", "table, json (the registry as JSON) or csv")
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
	if *asJSON {
		*output = "json"
	}
	if *output != "table" && *output != "json" && *output != "csv" {
		return fmt.Errorf("%w: --output %q: want table, json or csv", errUsage, *output)
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
		if err := writeSensors(e.stdout, *output, list, time.Now()); err != nil {
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

// writeSensors writes the registry as indented JSON, or one table or
// CSV row per sensor (CSV: plain numbers, last seen as RFC 3339).
func writeSensors(w io.Writer, format string, list []registry.SensorStatus, now time.Time) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	rows := newRowsOutputHeader(w, format, []string{"SENSOR", "STATE", "LAST SEEN", "REMOTE", "BATCHES", "FLOWS", "BLOCKS",
		"BYTES", "DURABLE SEQ", "ERRORS", "LAST ERROR"})
	for _, s := range list {
		state := "down"
		if s.Connected {
			state = "up"
		}
		seen, bytes := "never", client.HumanBytes(float64(s.Bytes))
		if !s.LastSeen.IsZero() {
			seen = now.Sub(s.LastSeen).Round(time.Second).String() + " ago"
		}
		if rows.raw {
			seen, bytes = "", strconv.FormatUint(s.Bytes, 10)
			if !s.LastSeen.IsZero() {
				seen = s.LastSeen.UTC().Format(time.RFC3339Nano)
			}
		}
		rows.write([]string{s.ID, state, seen, s.RemoteAddr, fmt.Sprint(s.Batches), fmt.Sprint(s.Flows), fmt.Sprint(s.Blocks),
			bytes, fmt.Sprint(s.DurableSeq), fmt.Sprint(s.Rejected + s.StoreErrors), s.LastError})
	}
	return rows.flush()
}
