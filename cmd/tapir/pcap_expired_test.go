package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/collector/api"
	"github.com/tapir-sensor/tapir/collector/retention"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/pebble"
	"github.com/tapir-sensor/tapir/storage/storagetest"
)

// TestPcapWarnsOfExpiredPackets: `tapir pcap --flow` against a real
// collector API over a Pebble store, after the real retention runner
// removed the two oldest blocks of the flow (by size), writes the rest
// of the flow (exit 0) and warns on stderr that the capture is
// incomplete, with what the server said; the output holds exactly the
// packets of the blocks left, as tshark reads them from the original
// capture. A complete flow gets no warning.
func TestPcapWarnsOfExpiredPackets(t *testing.T) {
	tshark := testenv.Tool(t, "tshark")
	const capture, perBlock, removed = "zeek/ssh.pcap", 8, 2
	flows := storagetest.LoadFlows(t, capture)
	// A flow of at least 4 blocks, and a TCP flow whose blocks all end
	// after the first one's first blocks (so that retention, which removes
	// blocks in the order of their last packet, meets those first).
	big, other := -1, -1
	for i := range flows {
		if len(flows[i].Packets) < 4*perBlock {
			continue
		}
		for j := range flows {
			if j != i && flows[j].Key.Proto == flow.ProtoTCP &&
				flows[j].Packets[min(perBlock, len(flows[j].Packets))-1].Time.After(flows[i].Packets[removed*perBlock-1].Time) {
				big, other = i, j
				break
			}
		}
		if big >= 0 {
			break
		}
	}
	if big < 0 {
		t.Fatalf("%s: no flow of %d packets with a TCP flow ending after its first %d", capture, 4*perBlock, removed*perBlock)
	}
	enc, err := block.NewEncoder(block.DefaultEncoderConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	// Real blocks (zstd, as the sensor makes them) of perBlock packets.
	encode := func(f *storagetest.Flow, counter uint32) *storagetest.Instance {
		in := storagetest.NewInstance(f, "s1", counter, 0, perBlock)
		for k := range in.Blocks {
			m := in.Blocks[k].Meta
			var b block.Builder
			b.Reset(block.Meta{Key: m.Key, FlowID: m.FlowID, CommunityID: m.CommunityID, SensorID: m.SensorID,
				Interface: m.Interface, LinkType: m.LinkType, Seq: m.Seq})
			for _, p := range f.Packets[k*perBlock : min((k+1)*perBlock, len(f.Packets))] {
				b.Append(p.Time.UnixNano(), p.Wire, p.Data)
			}
			raw, meta, err := b.Encode(enc, nil)
			if err != nil {
				t.Fatal(err)
			}
			in.Blocks[k] = storage.Block{Meta: meta, Encoded: raw}
		}
		return in
	}
	ins := []*storagetest.Instance{encode(&flows[big], 1), encode(&flows[other], 2)}

	cfg := pebble.DefaultConfig()
	cfg.MinFreeBytes = 0
	cfg.CacheBytes, cfg.MemTableBytes = 8<<20, 4<<20
	st, err := pebble.Open(t.TempDir(), cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storagetest.WriteInstances(t, st, "s1", ins, 2, 1)
	// Retention by size to all but the big flow's first two blocks.
	var total int64
	for _, in := range ins {
		for _, b := range in.Blocks {
			total += int64(len(b.Encoded))
		}
	}
	first := ins[0].Blocks[:removed]
	budget := total - int64(len(first[0].Encoded)) - int64(len(first[1].Encoded))
	r, err := retention.New(retention.Config{MaxBytes: budget, Interval: time.Minute}, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stats, err := r.RunOnce(context.Background()); err != nil || stats.Blocks != removed {
		t.Fatalf("retention removed %d blocks (%v), want %d", stats.Blocks, err, removed)
	}

	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	tokensFile := filepath.Join(dir, "tokens.yaml")
	if err := os.WriteFile(tokFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokensFile, []byte(api.HashToken("tok")+": {subject: alice, roles: [pcap:read]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	acfg := api.DefaultConfig()
	acfg.Listen = "127.0.0.1:0"
	acfg.TLS.Insecure = true
	acfg.TokensFile = tokensFile
	acfg.AuditFile = filepath.Join(dir, "audit.jsonl")
	acfg.AuditSync = false
	srv, err := api.New(acfg, api.Dependencies{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Stop() }()

	pull := func(in *storagetest.Instance) (string, string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "out.pcap")
		var so, se bytes.Buffer
		code := run(context.Background(), []string{"pcap", "--server", "http://" + srv.Addr(), "--token-file", tokFile,
			"--flow", in.ID.String(), "-o", out}, &so, &se)
		if code != 0 {
			t.Fatalf("tapir pcap --flow %s: exit %d: %s", in.ID, code, se.String())
		}
		return out, se.String()
	}
	// Frames as tshark reads them: epoch time and length, one per line.
	frames := func(path, filter string) []string {
		t.Helper()
		args := []string{"-r", path, "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "tcp.seq_raw"}
		if filter != "" {
			args = append(args, "-Y", filter)
		}
		b, err := exec.Command(tshark, args...).Output()
		if err != nil {
			t.Fatalf("tshark %s: %v", path, err)
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	tupleFilter := func(f *storagetest.Flow) string {
		tu := f.Packets[0].Tuple
		a, b := tu.Src.Netip(tu.Family), tu.Dst.Netip(tu.Family)
		return "ip.addr==" + a.String() + " && ip.addr==" + b.String() + " && tcp.port==" + strconv.Itoa(int(tu.SrcPort)) +
			" && tcp.port==" + strconv.Itoa(int(tu.DstPort))
	}
	orig := testenv.Pcap(t, capture)

	out, stderr := pull(ins[0])
	t.Logf("partial pull, stderr: %s", stderr)
	if !strings.Contains(stderr, "capture incomplete") || !strings.Contains(stderr, "blocks="+strconv.Itoa(removed)) ||
		!strings.Contains(stderr, "flows=1") {
		t.Errorf("partial pull: stderr has no warning with flows=1 blocks=%d:\n%s", removed, stderr)
	}
	from := time.Unix(0, ins[0].Blocks[removed].Meta.First).UTC().Format(time.RFC3339Nano)
	if !strings.Contains(stderr, "until="+from) {
		t.Errorf("partial pull: warning does not say packets before %s are missing:\n%s", from, stderr)
	}
	want := frames(orig, tupleFilter(&flows[big]))[removed*perBlock:]
	if got := frames(out, ""); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("partial pull: %d frames, want the %d tshark selects after the first %d blocks", len(got), len(want), removed)
	}

	out, stderr = pull(ins[1])
	if strings.Contains(stderr, "incomplete") || strings.Contains(stderr, "level=WARN") {
		t.Errorf("complete pull warned:\n%s", stderr)
	}
	if got, want := frames(out, ""), frames(orig, tupleFilter(&flows[other])); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("complete pull: %d frames, tshark selects %d", len(got), len(want))
	}
}
