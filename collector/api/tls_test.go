package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/collector/api/client"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/internal/tlsconfig"
)

// TestTLSClientCertAndClient serves the API over TLS with the development
// CA and pulls through the client package: a certificate user mapped to
// pcap:read gets the flow; one without roles gets 403; a token still
// works over TLS; a client that does not trust the CA fails.
func TestTLSClientCertAndClient(t *testing.T) {
	pki := t.TempDir()
	if err := tlsconfig.GenerateCA(pki); err != nil {
		t.Fatal(err)
	}
	if err := tlsconfig.IssueServer(pki, "localhost", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"carol", "dave"} {
		if err := tlsconfig.IssueClient(pki, u, "investigator"); err != nil {
			t.Fatal(err)
		}
	}
	path := testenv.Pcap(t, "zeek/get.pcap")
	c := loadCapture(t, path, []string{"s1", "s2"}, 3)
	st := openStore(t)
	writeBatches(t, st, c.batches(true))
	ts := startServer(t, st, c.last.Add(time.Minute), func(cfg *Config) {
		cert, key := tlsconfig.Paths(pki, "server")
		cfg.TLS = tlsconfig.Config{CAFile: tlsconfig.CAPath(pki), CertFile: cert, KeyFile: key}
		cfg.CertRoles = map[string][]string{"carol": {"pcap:read", "flows:read"}}
	})
	server := "https://" + ts.Addr()
	cid := flow.CommunityID(0, c.flows[0].rec.Tuple)
	sel := filepath.Join(t.TempDir(), "sel.pcap")
	tsharkSelect(t, c.path, c.flows[0].rec.Tuple, sel)
	want := tcpdumpText(t, sel)

	pull := func(cfg client.Config) (client.PcapResult, []byte, error) {
		cl, err := client.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		var progressed int64
		res, err := cl.Pcap(context.Background(), client.PcapRequest{Flow: cid}, &buf, func(n int64) { progressed = n })
		if err == nil && progressed != int64(buf.Len()) {
			t.Errorf("progress saw %d bytes, body %d", progressed, buf.Len())
		}
		return res, buf.Bytes(), err
	}
	certOf := func(u string) client.Config {
		cert, key := tlsconfig.Paths(pki, "client-"+u)
		return client.Config{Server: server, CAFile: tlsconfig.CAPath(pki), CertFile: cert, KeyFile: key}
	}

	res, body, err := pull(certOf("carol"))
	if err != nil {
		t.Fatalf("carol: %v", err)
	}
	if got := tcpdumpText(t, writeTemp(t, "c.pcap", body)); got != want || !res.Complete || res.Packets != int64(countLines(want, "\t")) {
		t.Fatalf("carol: %+v\n%s", res, got)
	}
	e := readAudit(t, ts.auditPath)
	if last := e[len(e)-1]; last.Subject != "carol" || last.AuthMethod != "cert" || last.Bytes != int64(len(body)) {
		t.Errorf("audit %+v", last)
	}

	var apiErr *client.APIError
	if _, _, err := pull(certOf("dave")); !errors.As(err, &apiErr) || apiErr.Status != 403 {
		t.Errorf("dave: %v", err)
	}
	if _, _, err := pull(client.Config{Server: server, CAFile: tlsconfig.CAPath(pki), Token: tokAlice}); err != nil {
		t.Errorf("token over TLS: %v", err)
	}
	if _, _, err := pull(client.Config{Server: server, CAFile: tlsconfig.CAPath(pki)}); !errors.As(err, &apiErr) || apiErr.Status != 401 {
		t.Errorf("no credentials: %v", err)
	}
	if _, _, err := pull(client.Config{Server: server, Token: tokAlice}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted server accepted: %v", err)
	}
	// Flows and sensors through the client.
	cl, _ := client.New(certOf("carol"))
	n := 0
	more, err := cl.Flows(context.Background(), "tcp and after 1d ago", 0, func(m json.RawMessage) error { n++; return nil })
	if err != nil || more || n != len(c.flows) {
		t.Errorf("flows: %d records (want %d), more %v, %v", n, len(c.flows), more, err)
	}
	if _, err := cl.Sensors(context.Background()); err != nil {
		t.Errorf("sensors: %v", err)
	}
	// Error codes reach the caller.
	other := c.flows[0].rec.Tuple
	other.DstPort++
	_, err = cl.Pcap(context.Background(), client.PcapRequest{Flow: flow.CommunityID(0, other)}, &bytes.Buffer{}, nil)
	if !errors.As(err, &apiErr) || apiErr.Status != 404 || apiErr.Code != "flow_unknown" {
		t.Errorf("unknown flow: %v", err)
	}
}
