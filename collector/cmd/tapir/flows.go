package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/tapir-sensor/tapir/collector/api/client"
)

func init() {
	register(&command{name: "flows", summary: "list flow records matching a query from the collector", run: runFlows})
}

// runFlows: tapir flows --query EXPR [--limit N] [--json | --table].
func runFlows(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("tapir flows", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var srv serverFlags
	srv.register(fs)
	q := fs.String("query", "", "flow query, e.g. 'host 10.0.0.1 and port 53 and after 1h ago' (default: the server's default window)")
	limit := fs.Int("limit", 0, "at most this many records (default: the server's)")
	asJSON := fs.Bool("json", false, "print ECS JSON lines (default)")
	asTable := fs.Bool("table", false, "print a table")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *asJSON && *asTable {
		return fmt.Errorf("%w: --json and --table exclude each other", errUsage)
	}
	c, err := srv.client()
	if err != nil {
		return err
	}
	out := newFlowPrinter(e.stdout, *asTable)
	more, err := c.Flows(ctx, *q, *limit, out.print)
	if ferr := out.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	if more {
		e.log.Warn("more flows matched than were listed; raise --limit or narrow the query")
	}
	return nil
}

// flowPrinter prints ECS documents as JSON lines or as a table.
type flowPrinter struct {
	w     io.Writer
	tw    *tabwriter.Writer
	table bool
}

func newFlowPrinter(w io.Writer, table bool) *flowPrinter {
	p := &flowPrinter{w: w, table: table}
	if table {
		p.tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(p.tw, "START\tPROTO\tSOURCE\tDESTINATION\tPACKETS\tBYTES\tREASON\tSENSOR\tCOMMUNITY ID")
	}
	return p
}

// ecsRow is the part of an ECS flow document the table shows.
type ecsRow struct {
	Event struct {
		Start  string `json:"start"`
		Reason string `json:"reason"`
	} `json:"event"`
	Network struct {
		Transport   string `json:"transport"`
		CommunityID string `json:"community_id"`
		Packets     uint64 `json:"packets"`
		Bytes       uint64 `json:"bytes"`
	} `json:"network"`
	Source, Destination struct {
		IP   string `json:"ip"`
		Port uint16 `json:"port"`
	}
	Observer *struct {
		Name string `json:"name"`
	} `json:"observer"`
}

func (p *flowPrinter) print(doc json.RawMessage) error {
	if !p.table {
		_, err := fmt.Fprintf(p.w, "%s\n", doc)
		return err
	}
	var r ecsRow
	if err := json.Unmarshal(doc, &r); err != nil {
		return fmt.Errorf("decode flow: %w", err)
	}
	sensor := ""
	if r.Observer != nil {
		sensor = r.Observer.Name
	}
	_, err := fmt.Fprintf(p.tw, "%s\t%s\t%s:%d\t%s:%d\t%d\t%s\t%s\t%s\t%s\n", r.Event.Start, r.Network.Transport,
		r.Source.IP, r.Source.Port, r.Destination.IP, r.Destination.Port, r.Network.Packets,
		client.HumanBytes(float64(r.Network.Bytes)), r.Event.Reason, sensor, r.Network.CommunityID)
	return err
}

func (p *flowPrinter) flush() error {
	if p.tw != nil {
		return p.tw.Flush()
	}
	return nil
}
