package api

import (
	"net/url"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestExporterFlowNoPackets: a flow known only from a flow exporter's
// records (sensor id exporter:<addr>) answers 404 no_packets, saying it
// came from an exporter, not not_flushed with a Retry-After.
func TestExporterFlowNoPackets(t *testing.T) {
	path := testenv.Pcap(t, "zeek/get.pcap")
	c := loadCapture(t, path, []string{"exporter:192.0.2.1"}, 3)
	st := openStore(t)
	writeBatches(t, st, c.batches(false)) // records only, as the flow input writes them
	ts := startServer(t, st, c.last.Add(0), nil)
	resp, body := ts.get(t, tokAlice, "/api/v1/pcap?flow="+url.QueryEscape(c.flows[0].rec.CommunityID))
	code, msg := errorCode(t, body)
	if code == "flow_unknown" {
		t.Skip("this store does not index flows from records alone")
	}
	if resp.StatusCode != 404 || code != "no_packets" || !strings.Contains(msg, "exporter") || resp.Header.Get("Retry-After") != "" {
		t.Fatalf("exporter flow: %d %s (Retry-After %q)", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
}
