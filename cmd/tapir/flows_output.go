package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tapir-sensor/tapir/collector/api/client"
)

// flowOutput receives the ECS documents `tapir flows` lists and writes
// them in one output format.
type flowOutput interface {
	add(doc json.RawMessage) error
	flush() error
}

// newFlowOutput returns the output the command line chose.
func newFlowOutput(w io.Writer, a *flowsArgs) (flowOutput, error) {
	if a.top > 0 {
		return newTopOutput(w, a), nil
	}
	switch a.output {
	case "table", "csv":
		return newRowsOutput(w, a.output), nil
	case "timeline":
		return &timelineOutput{w: w}, nil
	}
	return &jsonOutput{w: w}, nil
}

// jsonOutput writes each document as one line, as the API sent it.
type jsonOutput struct{ w io.Writer }

func (o *jsonOutput) add(doc json.RawMessage) error {
	_, err := fmt.Fprintf(o.w, "%s\n", doc)
	return err
}

func (o *jsonOutput) flush() error { return nil }

// rowColumns are the columns of --output table and csv.
var rowColumns = []string{"START", "DURATION", "PROTO", "SOURCE", "DESTINATION", "SERVICE", "PACKETS", "BYTES",
	"REASON", "SENSOR", "FLOW ID", "COMMUNITY ID"}

// rowsOutput writes one row per flow, aligned (table) or as CSV.
type rowsOutput struct {
	tw  *tabwriter.Writer // table
	cw  *csv.Writer       // csv
	raw bool              // csv: plain numbers, not human units
}

func newRowsOutput(w io.Writer, format string) *rowsOutput {
	return newRowsOutputHeader(w, format, rowColumns)
}

// newRowsOutputHeader returns a table or CSV writer that has written the
// header.
func newRowsOutputHeader(w io.Writer, format string, header []string) *rowsOutput {
	o := &rowsOutput{}
	if format == "csv" {
		o.cw, o.raw = csv.NewWriter(w), true
	} else {
		o.tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	}
	o.write(header)
	return o
}

func (o *rowsOutput) write(cells []string) {
	if o.cw != nil {
		_ = o.cw.Write(cells) // errors surface at flush
		return
	}
	fmt.Fprintln(o.tw, strings.Join(cells, "\t"))
}

func (o *rowsOutput) add(doc json.RawMessage) error {
	var r ecsRow
	if err := json.Unmarshal(doc, &r); err != nil {
		return fmt.Errorf("decode flow: %w", err)
	}
	bytes := strconv.FormatUint(r.Network.Bytes, 10)
	dur := time.Duration(r.Event.Duration)
	durText := strconv.FormatFloat(dur.Seconds(), 'f', -1, 64)
	if !o.raw {
		bytes = client.HumanBytes(float64(r.Network.Bytes))
		durText = roundDuration(dur).String()
	}
	o.write([]string{r.Event.Start, durText, r.Network.Transport, endpoint(r.Source.IP, r.Source.Port),
		endpoint(r.Destination.IP, r.Destination.Port), r.service(), strconv.FormatUint(r.Network.Packets, 10), bytes,
		r.Event.Reason, r.sensor(), r.Tapir.FlowID, r.Network.CommunityID})
	return nil
}

func (o *rowsOutput) flush() error {
	if o.cw != nil {
		o.cw.Flush()
		return o.cw.Error()
	}
	return o.tw.Flush()
}

// roundDuration keeps a duration readable: milliseconds below a minute,
// seconds above.
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// endpoint writes ip:port ([ip]:port for IPv6), ip alone without a port.
func endpoint(ip string, port uint16) string {
	if port == 0 {
		return ip
	}
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:" + strconv.Itoa(int(port))
	}
	return ip + ":" + strconv.Itoa(int(port))
}

// timelineOutput writes each flow with a sparkline of its timeline.
type timelineOutput struct{ w io.Writer }

func (o *timelineOutput) add(doc json.RawMessage) error {
	var r ecsRow
	if err := json.Unmarshal(doc, &r); err != nil {
		return fmt.Errorf("decode flow: %w", err)
	}
	line, col := sparkline(r.Tapir.Timeline)
	if line == "" {
		line = "(no timeline)"
	} else {
		line = fmt.Sprintf("|%s| %v/column", line, col)
		if r.Tapir.Timeline.Cut > 0 {
			line += fmt.Sprintf(", %d intervals cut", r.Tapir.Timeline.Cut)
		}
	}
	_, err := fmt.Fprintf(o.w, "%s %s %s -> %s %d pkts %s %s\n", r.Event.Start, r.Network.Transport,
		endpoint(r.Source.IP, r.Source.Port), endpoint(r.Destination.IP, r.Destination.Port), r.Network.Packets,
		r.Network.CommunityID, line)
	return err
}

func (o *timelineOutput) flush() error { return nil }

// ecsRow is the part of an ECS flow document the table shows.
type ecsRow struct {
	Event struct {
		Start    string `json:"start"`
		Duration int64  `json:"duration"`
		Reason   string `json:"reason"`
	} `json:"event"`
	Network struct {
		Transport   string `json:"transport"`
		Protocol    string `json:"protocol"`
		CommunityID string `json:"community_id"`
		Packets     uint64 `json:"packets"`
		Bytes       uint64 `json:"bytes"`
	} `json:"network"`
	Source, Destination struct {
		IP     string `json:"ip"`
		Port   uint16 `json:"port"`
		Domain string `json:"domain"`
	}
	TLS *struct {
		Client struct {
			ServerName string `json:"server_name"`
		} `json:"client"`
	} `json:"tls"`
	DNS *struct {
		Question struct {
			Name string `json:"name"`
		} `json:"question"`
	} `json:"dns"`
	URL *struct {
		Domain string `json:"domain"`
	} `json:"url"`
	Observer *struct {
		Name string `json:"name"`
	} `json:"observer"`
	Tapir struct {
		FlowID   string       `json:"flow_id"`
		SensorID string       `json:"sensor_id"`
		Timeline *ecsTimeline `json:"timeline"`
	} `json:"tapir"`
}

// service names what the flow talked to: the TLS SNI, the HTTP host, the
// DNS question, the destination's domain, else the application protocol.
func (r *ecsRow) service() string {
	switch {
	case r.TLS != nil && r.TLS.Client.ServerName != "":
		return r.TLS.Client.ServerName
	case r.URL != nil && r.URL.Domain != "":
		return r.URL.Domain
	case r.DNS != nil && r.DNS.Question.Name != "":
		return r.DNS.Question.Name
	case r.Destination.Domain != "":
		return r.Destination.Domain
	}
	return r.Network.Protocol
}

// sensor is the observer name, else the sensor ID.
func (r *ecsRow) sensor() string {
	if r.Observer != nil && r.Observer.Name != "" {
		return r.Observer.Name
	}
	return r.Tapir.SensorID
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
	return bars(cols), time.Duration(per*tl.IntervalMs) * time.Millisecond
}

// bars draws one block character ▁..█ per column, scaled to the
// highest, a space for an empty column.
func bars(cols []uint64) string {
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
	return string(out)
}
