package engine_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestRecordsCarryMetadata runs a real capture (curl's DNS lookup and
// TLS 1.3 connection) through the engine and expects the flow records to
// carry the metadata: Arkime's JA4, JA3 and host for the TLS flow, the
// query and answers for the DNS flow, and the ECS fields in JSON. With
// metadata off, no record carries any.
func TestRecordsCarryMetadata(t *testing.T) {
	path := testenv.Pcap(t, "arkime/curl-enabled-tls13.pcap")
	var arkime struct {
		Sessions []struct {
			Body struct {
				TLS *struct {
					JA4 []string `json:"ja4"`
					JA3 []string `json:"ja3"`
				} `json:"tls"`
			} `json:"body"`
		} `json:"sessions3"`
	}
	b, err := os.ReadFile(testenv.Pcap(t, "arkime/curl-enabled-tls13.test"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &arkime); err != nil {
		t.Fatal(err)
	}
	var ja4, ja3 string
	for _, s := range arkime.Sessions {
		if s.Body.TLS != nil {
			ja4, ja3 = s.Body.TLS.JA4[0], s.Body.TLS.JA3[0]
		}
	}
	sink, stats, err := runFile(t, path, longTimeouts())
	if err != nil {
		t.Fatal(err)
	}
	var sawTLS, sawDNS bool
	for _, r := range sink.finals() {
		if r.App == nil {
			continue
		}
		js, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		if tl := r.App.TLS; tl != nil {
			sawTLS = true
			if tl.JA4 != ja4 || tl.JA3 != ja3 || tl.ServerName != "enabled.tls13.com" || tl.ServerVersion != 0x0304 {
				t.Errorf("TLS metadata %+v; Arkime ja4 %s ja3 %s", tl, ja4, ja3)
			}
			for _, want := range []string{`"ja4":"` + ja4 + `"`, `"server_name":"enabled.tls13.com"`, `"version":"1.3"`, `"version_protocol":"tls"`, `"cipher":"TLS_AES_256_GCM_SHA384"`} {
				if !strings.Contains(string(js), want) {
					t.Errorf("ECS JSON lacks %s: %s", want, js)
				}
			}
		}
		if d := r.App.DNS; d != nil {
			sawDNS = true
			if d.QueryName != "enabled.tls13.com" || !d.HasResponse || len(d.Answers) != 2 {
				t.Errorf("DNS metadata %+v", d)
			}
			if !strings.Contains(string(js), `"question":{"name":"enabled.tls13.com"`) || !strings.Contains(string(js), `"resolved_ip":[`) {
				t.Errorf("ECS JSON lacks dns fields: %s", js)
			}
		}
	}
	if !sawTLS || !sawDNS {
		t.Fatalf("records with TLS %v, DNS %v", sawTLS, sawDNS)
	}
	if stats.Metadata.TLS != 1 || stats.Metadata.DNS != 1 || stats.Metadata.Completed != 2 { // Arkime: one TLS session, one DNS session (two transactions)
		t.Errorf("metadata stats %+v", stats.Metadata)
	}

	cfg := longTimeouts()
	cfg.Metadata.Enabled = false
	sink, stats, err = runFile(t, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range sink.records {
		if r.App != nil {
			t.Fatalf("metadata off, record has %+v", r.App)
		}
	}
	if stats.Metadata.Flows != 0 {
		t.Fatalf("metadata off, stats %+v", stats.Metadata)
	}
}

// TestTimelineMatchesTshark runs SSH sessions through the engine with
// 100 ms intervals and checks each long flow's timeline against tshark:
// the same packets and bytes in the same intervals (aligned on the flow's
// first packet), and sums equal to the record's counters.
func TestTimelineMatchesTshark(t *testing.T) {
	path := testenv.Pcap(t, "zeek/ssh.pcap")
	cfg := longTimeouts()
	cfg.Timeline.Interval = 100 * time.Millisecond
	cfg.Timeline.MinDuration = time.Second
	sink, stats, err := runFile(t, path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// tshark: per TCP conversation, each frame's time and length.
	out, err := exec.Command(testenv.Tool(t, "tshark"), "-n", "-r", path, "-Y", "tcp", "-T", "fields",
		"-e", "tcp.stream", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "tcp.srcport", "-e", "tcp.dstport").Output()
	if err != nil {
		t.Fatal(err)
	}
	type frame struct {
		ns  int64
		len uint64
	}
	streams := map[string][]frame{}
	ports := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		c := strings.Split(line, "\t")
		sec, frac, _ := strings.Cut(c[1], ".")
		s, _ := strconv.ParseInt(sec, 10, 64)
		frac = (frac + "000000000")[:9]
		ns, _ := strconv.ParseInt(frac, 10, 64)
		l, _ := strconv.ParseUint(c[2], 10, 64)
		streams[c[0]] = append(streams[c[0]], frame{s*1e9 + ns, l})
		a, b := c[3], c[4]
		if a > b {
			a, b = b, a
		}
		ports[a+"-"+b] = c[0]
	}
	checked := 0
	for _, r := range sink.finals() {
		tl := r.Timeline
		if r.Tuple.Proto != flow.ProtoTCP {
			continue
		}
		long := r.End.Sub(r.Start) >= cfg.Timeline.MinDuration
		if (tl != nil) != long {
			t.Errorf("%s: timeline %v for a flow of %v", r.Tuple, tl != nil, r.End.Sub(r.Start))
			continue
		}
		if tl == nil {
			continue
		}
		pts, err := tl.Decode()
		if err != nil {
			t.Fatalf("%s: %v", r.Tuple, err)
		}
		a, b := strconv.Itoa(int(r.Tuple.SrcPort)), strconv.Itoa(int(r.Tuple.DstPort))
		if a > b {
			a, b = b, a
		}
		frames := streams[ports[a+"-"+b]]
		want := map[int64][2]uint64{}
		iv := int64(cfg.Timeline.Interval)
		for _, f := range frames {
			k := (f.ns - frames[0].ns) / iv
			w := want[k]
			want[k] = [2]uint64{w[0] + 1, w[1] + f.len}
		}
		if len(pts) != len(want) || tl.Points != uint32(len(want)) || tl.Cut != 0 {
			t.Errorf("%s: %d points (cut %d), tshark %d intervals", r.Tuple, len(pts), tl.Cut, len(want))
			continue
		}
		var np, nb uint64
		for _, p := range pts {
			k := (p.Start.UnixNano() - frames[0].ns + int64(time.Millisecond)) / iv
			if w := want[k]; w[0] != p.Packets || w[1] != p.Bytes {
				t.Errorf("%s: interval %d: %d packets %d bytes, tshark %d %d", r.Tuple, k, p.Packets, p.Bytes, w[0], w[1])
			}
			np += p.Packets
			nb += p.Bytes
		}
		if np != r.Source.Packets+r.Destination.Packets || nb != r.Source.Bytes+r.Destination.Bytes {
			t.Errorf("%s: timeline sums %d/%d, record %d/%d", r.Tuple, np, nb, r.Source.Packets+r.Destination.Packets, r.Source.Bytes+r.Destination.Bytes)
		}
		checked++
	}
	if checked == 0 || stats.Timelines == 0 {
		t.Fatalf("no timeline checked (%d records with one)", stats.Timelines)
	}
	t.Logf("%d flow timelines match tshark", checked)
}
