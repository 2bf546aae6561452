package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/tapir-sensor/tapir/collector/api/client"
	"github.com/tapir-sensor/tapir/collector/query"
	"github.com/tapir-sensor/tapir/storage/flowindex"
)

func init() {
	register(&command{name: "flows", summary: "list flow records matching a query from the collector (exit 1 when none match, like grep)", run: runFlows})
}

// errNoMatch ends `tapir flows` with exit status 1 when nothing matched
// (like grep); the hint is already on stderr.
var errNoMatch = errors.New("no flows matched")

// defaultWindow is what `tapir flows` searches without --from/--to or
// an after/before in the query.
const defaultWindow = time.Hour

// flowsArgs is a parsed `tapir flows` command line.
type flowsArgs struct {
	srv      serverFlags
	query    string
	from, to string
	limit    int
	output   string
	top      int
	by       string
	group    string
	sort     string
	cursor   string
	hist     bool
	buckets  int
	fields   bool
}

// runFlows: tapir flows [--query EXPR] [--from T] [--to T] [--limit N]
// [--sort [-]FIELD] [--cursor C] [--output table|json|csv | --timeline]
// [--top N [--by bytes|packets|flows|FIELD] [--group FIELD]] [--histogram [--buckets N]].
func runFlows(ctx context.Context, e *env, args []string) error {
	a, err := parseFlowsArgs(e, args)
	if err != nil {
		return err
	}
	c, err := a.srv.client()
	if err != nil {
		return err
	}
	expr, window, err := flowsWindow(a.query, a.from, a.to, time.Now())
	if err != nil {
		return err
	}
	if a.fields {
		return printFields(ctx, e, c)
	}
	fmt.Fprintln(e.stderr, window)
	switch {
	case a.hist:
		return runHistogram(ctx, e, c, a, expr)
	case a.top > 0:
		if done, err := serverTop(ctx, e, c, a, expr); done {
			return err
		}
	}
	out, err := newFlowOutput(e.stdout, a)
	if err != nil {
		return err
	}
	n := 0
	page, err := c.FlowsPage(ctx, client.FlowsRequest{Query: expr, Limit: a.limit, Sort: a.sort, Cursor: a.cursor}, func(doc json.RawMessage) error {
		n++
		return out.add(doc)
	})
	if ferr := out.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	if page.More {
		nextHint(e, a, page)
	}
	if n == 0 {
		fmt.Fprintln(e.stderr, "no flows matched: the store may hold flows outside this window; widen it, e.g. --from 2024-01-01 or --from '30d ago' (exit status 1, like grep)")
		return errNoMatch
	}
	return nil
}

// parseFlowsArgs parses and checks the command line.
func parseFlowsArgs(e *env, args []string) (*flowsArgs, error) {
	fs := flag.NewFlagSet("tapir flows", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	a := &flowsArgs{}
	a.srv.register(fs)
	fs.StringVar(&a.query, "query", "", "flow query, e.g. 'host 10.0.0.1 and port 53'")
	fs.StringVar(&a.from, "from", "", "flows after this time: RFC 3339, YYYY-MM-DD, unix seconds or '2h ago' (default: 1h ago)")
	fs.StringVar(&a.to, "to", "", "flows before this time (default: now)")
	fs.IntVar(&a.limit, "limit", 0, "at most this many records (default: the server's)")
	fs.StringVar(&a.output, "output", "json", "json (ECS JSON lines), table or csv")
	asJSON := fs.Bool("json", false, "same as --output json")
	asTable := fs.Bool("table", false, "same as --output table")
	asTimeline := fs.Bool("timeline", false, "print each flow with a sparkline of its packets per interval (flows that carry a timeline)")
	fs.IntVar(&a.top, "top", 0, "aggregate: the N values of --group with the most --by")
	fs.StringVar(&a.by, "by", "bytes", "with --top: rank by bytes, packets or flows, or a field to group by (then ranked by flows)")
	fs.StringVar(&a.sort, "sort", "", "sort by start (default), end, bytes, packets, duration or another numeric field; -FIELD for descending")
	fs.StringVar(&a.cursor, "cursor", "", "the next page of a search: the cursor the previous page printed (same --query, --sort, --from and --to)")
	fs.BoolVar(&a.hist, "histogram", false, "print a sparkline of the matching flows' count over the window instead of the flows")
	fs.IntVar(&a.buckets, "buckets", 60, "with --histogram: columns of the sparkline")
	fs.BoolVar(&a.fields, "fields", false, "list the fields the query language searches (FIELD == VALUE, FIELD exists...) and exit")
	fs.StringVar(&a.group, "group", "destination.ip", "with --top: the ECS field to group by, e.g. source.ip, destination.port, tls.client.server_name")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	modes := 0
	for _, m := range []string{"json", "table", "timeline", "output"} {
		if set[m] {
			modes++
		}
	}
	if modes > 1 {
		return nil, fmt.Errorf("%w: --output, --json, --table and --timeline exclude each other", errUsage)
	}
	switch {
	case *asJSON:
		a.output = "json"
	case *asTable:
		a.output = "table"
	case *asTimeline:
		a.output = "timeline"
	}
	if a.output != "json" && a.output != "table" && a.output != "csv" && a.output != "timeline" {
		return nil, fmt.Errorf("%w: --output %q: want table, json or csv", errUsage, a.output)
	}
	if a.top < 0 || a.top > 0 && a.output == "timeline" {
		return nil, fmt.Errorf("%w: --top takes a positive N and --output table, json or csv", errUsage)
	}
	if a.by != "bytes" && a.by != "packets" && a.by != "flows" {
		if _, ok := flowindex.ByName(a.by); !ok {
			return nil, fmt.Errorf("%w: --by %q: want bytes, packets, flows or a field (tapir flows --fields lists them)", errUsage, a.by)
		}
		a.group, a.by = a.by, "flows"
	}
	if a.hist && (a.top > 0 || set["output"] || set["sort"] || set["cursor"] || a.buckets <= 0) {
		return nil, fmt.Errorf("%w: --histogram takes --buckets N > 0 and excludes --top, --output, --sort and --cursor", errUsage)
	}
	return a, nil
}

// flowsWindow returns the query to send and the stderr line saying which
// window it searches. A query that sets its own after/before is sent as
// is unless --from/--to are given; otherwise the window (default: the
// last hour) is added to it.
func flowsWindow(q, from, to string, now time.Time) (expr, line string, err error) {
	if from == "" && to == "" && queryHasTime(q) {
		return q, "searched the window the query's after/before set", nil
	}
	start, end := now.Add(-defaultWindow), now
	if from != "" {
		if start, err = query.ParseTime(from, now); err != nil {
			return "", "", fmt.Errorf("%w: --from: %v", errUsage, err)
		}
	}
	if to != "" {
		if end, err = query.ParseTime(to, now); err != nil {
			return "", "", fmt.Errorf("%w: --to: %v", errUsage, err)
		}
	}
	if !end.After(start) {
		return "", "", fmt.Errorf("%w: --to must be after --from", errUsage)
	}
	expr = fmt.Sprintf("after %s and before %s", unixText(start), unixText(end))
	if strings.TrimSpace(q) != "" {
		expr = "(" + q + ") and " + expr
	}
	line = fmt.Sprintf("searched %s – %s (default: the last hour; --from/--to)",
		start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
	return expr, line, nil
}

// unixText writes a time as the query language's unix seconds.fraction.
func unixText(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// queryHasTime reports whether a query bounds time itself (an after or
// before term).
func queryHasTime(q string) bool {
	for _, w := range strings.FieldsFunc(strings.ToLower(q), func(r rune) bool { return r == ' ' || r == '(' || r == ')' || r == '\t' }) {
		if w == "after" || w == "before" {
			return true
		}
	}
	return false
}
