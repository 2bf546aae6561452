package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tapir-sensor/tapir/collector/api/client"
)

// nextHint tells how to list the next page: the cursor the server gave,
// with the window searched (relative --from/--to would move).
func nextHint(e *env, a *flowsArgs, page client.FlowsPage) {
	if page.Next == "" {
		e.log.Warn("more flows matched than were listed; raise --limit or narrow the query")
		return
	}
	from, to, _ := strings.Cut(page.Window, "/")
	args := "--cursor " + page.Next
	if from != "" && to != "" && (a.from != "" || a.to != "" || !queryHasTime(a.query)) {
		args += " --from " + from + " --to " + to
	}
	if a.sort != "" {
		args += " --sort " + a.sort
	}
	fmt.Fprintf(e.stderr, "more flows matched: list the next page with the same query and %s\n", args)
}

// serverTop answers --top with the collector's /api/v1/flows/top. done
// is false when the collector has no such endpoint (an older release):
// the caller then aggregates the listed flows itself.
func serverTop(ctx context.Context, e *env, c *client.Client, a *flowsArgs, expr string) (done bool, err error) {
	top, err := c.Top(ctx, expr, a.group, a.by, a.top)
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		e.log.Info("the collector has no top N endpoint; aggregating the listed flows here")
		return false, nil
	}
	if err != nil {
		return true, err
	}
	o := newTopOutput(e.stdout, a)
	for _, r := range top.Rows {
		o.groups[r.Value] = &topGroup{Value: r.Value, Flows: r.Flows, Packets: r.Packets, Bytes: r.Bytes}
	}
	if err := o.flush(); err != nil {
		return true, err
	}
	if len(top.Rows) == 0 {
		fmt.Fprintln(e.stderr, "no flows matched: the store may hold flows outside this window; widen it, e.g. --from 2024-01-01 or --from '30d ago' (exit status 1, like grep)")
		return true, errNoMatch
	}
	if top.Other.Flows > 0 {
		fmt.Fprintf(e.stderr, "other values: %d flows, %d packets, %s\n", top.Other.Flows, top.Other.Packets, client.HumanBytes(float64(top.Other.Bytes)))
	}
	return true, nil
}

// runHistogram prints the matching flows' count over the window as a
// sparkline, one column per bucket, with its scale.
func runHistogram(ctx context.Context, e *env, c *client.Client, a *flowsArgs, expr string) error {
	h, err := c.Histogram(ctx, expr, a.buckets)
	if err != nil {
		return err
	}
	var total, peak uint64
	for _, n := range h.Counts {
		total += n
		peak = max(peak, n)
	}
	fmt.Fprintf(e.stdout, "|%s|\n", bars(h.Counts))
	fmt.Fprintf(e.stdout, "%s – %s, %v per column, peak %d, %d flows\n", h.From.UTC().Format(time.RFC3339),
		h.To.UTC().Format(time.RFC3339), time.Duration(h.BucketSeconds)*time.Second, peak, total)
	if total == 0 {
		fmt.Fprintln(e.stderr, "no flows matched: the store may hold flows outside this window; widen it, e.g. --from 2024-01-01 or --from '30d ago' (exit status 1, like grep)")
		return errNoMatch
	}
	return nil
}

// printFields lists the searchable fields the collector knows.
func printFields(ctx context.Context, e *env, c *client.Client) error {
	fields, err := c.Fields(ctx)
	if err != nil {
		return err
	}
	rows := newRowsOutputHeader(e.stdout, "table", []string{"FIELD", "TYPE", "INDEXED", "ALIASES", "DESCRIPTION"})
	for _, f := range fields {
		idx := ""
		if f.Indexed {
			idx = "yes"
		}
		rows.write([]string{f.Name, f.Type, idx, strings.Join(f.Aliases, ","), f.Description})
	}
	return rows.flush()
}
