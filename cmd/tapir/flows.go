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
	asTimeline := fs.Bool("timeline", false, "print each flow with a sparkline of its packets per interval (flows that carry a timeline)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *asJSON && *asTable || *asTimeline && (*asJSON || *asTable) {
		return fmt.Errorf("%w: --json, --table and --timeline exclude each other", errUsage)
	}
	c, err := srv.client()
	if err != nil {
		return err
	}
	out := newFlowPrinter(e.stdout, *asTable)
	out.timeline = *asTimeline
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
	w        io.Writer
	tw       *tabwriter.Writer
	table    bool
	timeline bool
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
	Tapir struct {
		Timeline *ecsTimeline `json:"timeline"`
	} `json:"tapir"`
}

// ecsTimeline is tapir.timeline in an ECS flow document.
type ecsTimeline struct {
	IntervalMs int64    `json:"interval_ms"`
	Cut        uint32   `json:"cut"`
	OffsetMs   []int64  `json:"offset_ms"`
	Packets    []uint64 `json:"packets"`
	Bytes      []uint64 `json:"bytes"`
}

// sparkWidth is the most columns a sparkline takes; longer timelines
// sum several intervals per column.
const sparkWidth = 60

// sparkline draws packets per interval with the block characters
// ▁..█ scaled to the busiest column, a space for a column without
// packets. It returns the line and the time one column covers.
func sparkline(tl *ecsTimeline) (string, time.Duration) {
	if tl == nil || tl.IntervalMs <= 0 || len(tl.OffsetMs) == 0 || len(tl.Packets) != len(tl.OffsetMs) {
		return "", 0
	}
	n := tl.OffsetMs[len(tl.OffsetMs)-1]/tl.IntervalMs + 1
	per := (n + sparkWidth - 1) / sparkWidth
	cols := make([]uint64, (n+per-1)/per)
	for i, off := range tl.OffsetMs {
		if c := off / tl.IntervalMs / per; off >= 0 && c < int64(len(cols)) {
			cols[c] += tl.Packets[i]
		}
	}
	var peak uint64
	for _, v := range cols {
		peak = max(peak, v)
	}
	levels := []rune("▁▂▃▄▅▆▇█")
	out := make([]rune, len(cols))
	for i, v := range cols {
		if v == 0 {
			out[i] = ' '
			continue
		}
		out[i] = levels[min(uint64(len(levels)-1), (v*uint64(len(levels))-1)/peak)]
	}
	return string(out), time.Duration(per*tl.IntervalMs) * time.Millisecond
}

func (p *flowPrinter) print(doc json.RawMessage) error {
	if !p.table && !p.timeline {
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
	if p.timeline {
		line, col := sparkline(r.Tapir.Timeline)
		if line == "" {
			line = "(no timeline)"
		} else {
			line = fmt.Sprintf("|%s| %v/column", line, col)
			if r.Tapir.Timeline.Cut > 0 {
				line += fmt.Sprintf(", %d intervals cut", r.Tapir.Timeline.Cut)
			}
		}
		_, err := fmt.Fprintf(p.w, "%s %s %s:%d -> %s:%d %d pkts %s %s\n", r.Event.Start, r.Network.Transport,
			r.Source.IP, r.Source.Port, r.Destination.IP, r.Destination.Port, r.Network.Packets,
			r.Network.CommunityID, line)
		return err
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
