package tunnels

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/encaptest"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/internal/tsharkoracle"
)

// pcapFrame is one frame of a capture file: its time and bytes.
type pcapFrame struct {
	ts   int64
	data string
}

// readFrames reads every frame of a classic pcap file.
func readFrames(t *testing.T, path string) []pcapFrame {
	t.Helper()
	_, pkts := testenv.ReadPcap(t, path)
	out := make([]pcapFrame, len(pkts))
	for i, p := range pkts {
		out[i] = pcapFrame{p.Info.Timestamp.UnixNano(), string(p.Data)}
	}
	return out
}

// sortFrames orders frames by time, then bytes (the answer merges flows
// in time order; frames with equal times may come in either order).
func sortFrames(fs []pcapFrame) {
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].ts != fs[j].ts {
			return fs[i].ts < fs[j].ts
		}
		return fs[i].data < fs[j].data
	})
}

// tsharkOuterKeys returns, per frame of path, tshark's outermost IP
// header's direction-free 5-tuple (UDP ports for UDP, none otherwise),
// keyed as tunnelFlowLine.key; "" for a frame without IP.
func tsharkOuterKeys(t *testing.T, path string) []string {
	t.Helper()
	lines := tsharkoracle.Lines(t, "-n", "-r", path, "-T", "fields", "-E", "separator=\t",
		"-E", "occurrence=f", "-e", "ip.src", "-e", "ip.dst", "-e", "ip.proto",
		"-e", "ipv6.src", "-e", "ipv6.dst", "-e", "ipv6.nxt", "-e", "udp.srcport", "-e", "udp.dstport")
	var keys []string
	for _, line := range lines {
		f := strings.Split(line, "\t")
		for len(f) < 8 {
			f = append(f, "")
		}
		src, dst, proto := f[0], f[1], f[2]
		if src == "" {
			src, dst, proto = f[3], f[4], f[5]
		}
		if src == "" {
			keys = append(keys, "")
			continue
		}
		var l tunnelFlowLine
		l.Network.IANANumber = proto
		l.Source.IP, l.Destination.IP = src, dst
		if proto == "17" {
			sp, err1 := strconv.ParseUint(f[6], 10, 16)
			dp, err2 := strconv.ParseUint(f[7], 10, 16)
			if err1 != nil || err2 != nil {
				t.Fatalf("tshark UDP ports %q %q", f[6], f[7])
			}
			l.Source.Port, l.Destination.Port = uint16(sp), uint16(dp)
		}
		keys = append(keys, l.key())
	}
	return keys
}

// pullPcap asks the collector for the pcap of a flow (`tapir pcap
// --flow`), retrying while its packets are not flushed, and returns its
// frames.
func pullPcap(t *testing.T, bin, apiAddr, ca, token, flowID string, tunnel bool) []pcapFrame {
	t.Helper()
	out := filepath.Join(t.TempDir(), "answer.pcap")
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "tapir"), "pcap", "--server", "https://"+apiAddr, "--ca", ca,
			"--flow", flowID, "-o", out, fmt.Sprintf("--tunnel=%v", tunnel))
		cmd.Env = append(os.Environ(), "TAPIR_TOKEN="+token)
		log, err := cmd.CombinedOutput()
		cancel()
		if err == nil {
			return readFrames(t, out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("tapir pcap --flow %s: %v: %s", flowID, err, e2etest.LastLines(string(log), 5))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestPcapByTunnelFlow: a pcap request by a tunnel flow's own Community
// ID or flow ID (the record marked tapir.tunnel_flow, on the tunnel's
// outer 5-tuple) with tunnel=1 (`tapir pcap --tunnel`) returns the
// tunnel's packets: every frame whose outermost IP header, as tshark
// reads it, has the tunnel's 5-tuple, byte for byte with its timestamp,
// nothing else. Without it the answer is the same for a tunnel whose
// every frame was taken apart, and, for a tunnel that also stored frames
// the sensor could not take apart (CDP over ERSPAN in
// arkime/gre-erspan.pcap), those frames: the frames tshark gives that
// Community ID. Shared tunnel captures and wikipedia.pcap wrapped in
// VXLAN and in GRE go through tapir-sensor to tapir-collector (Pebble);
// the request goes through `tapir pcap`. Before, the collector answered
// 404 not_flushed for ever to a tunnel that stored no frame.
func TestPcapByTunnelFlow(t *testing.T) {
	bin, work := binDir(t), t.TempDir()
	pki := filepath.Join(work, "pki")
	run(t, nil, filepath.Join(bin, "tapir"), "certs", "init", "-dir", pki)
	run(t, nil, filepath.Join(bin, "tapir"), "certs", "server", "-dir", pki, "localhost", "127.0.0.1")
	ca := filepath.Join(pki, "ca.pem")
	caps := map[string]string{}
	for i, rel := range sharedTunnelCaptures {
		caps[fmt.Sprintf("shared%d", i)] = testenv.Pcap(t, rel)
	}
	for _, k := range []encaptest.Kind{encaptest.VXLAN, encaptest.GRE} {
		p := filepath.Join(work, "wikipedia."+string(k)+".pcap")
		if _, _, err := encaptest.File(k, testenv.Pcap(t, "zeek/wikipedia.pcap"), p); err != nil {
			t.Fatal(err)
		}
		caps["built-"+string(k)] = p
	}
	ingest, apiAddr, token := startCollector(t, bin, work, pki)
	for id, path := range caps {
		t.Run(id, func(t *testing.T) {
			run(t, nil, filepath.Join(bin, "tapir"), "certs", "sensor", "-dir", pki, id)
			out := filepath.Join(work, id+".flows.json")
			run(t, nil, filepath.Join(bin, "tapir-sensor"), "-r", path, "--sensor-id", id, "--collector", ingest, "--tls-dir", pki,
				"--spool-dir", filepath.Join(work, "spool-"+id), "--flows-out", out, "--drain-timeout", "30s",
				"--idle-timeout", "87600h", "--active-timeout", "87600h")
			checkTunnelPcaps(t, path, 0, e2etest.JSONLines[tunnelFlowLineID](t, readFile(t, out)), true, func(flowID string, tunnel bool) []pcapFrame {
				return pullPcap(t, bin, apiAddr, ca, token, flowID, tunnel)
			})
		})
	}
}

// TestPcapBlocksByTunnelCommunityID: offline, `tapir pcap --blocks DIR
// --community-id CID --community-seed N [--tunnel]` by a tunnel flow's
// Community ID returns the same frames as the API does
// (TestPcapByTunnelFlow), from the sensor's --blocks-out directory
// (Community IDs with seed 4242). Before, it failed when no block had the
// tunnel's Community ID.
func TestPcapBlocksByTunnelCommunityID(t *testing.T) {
	bin, work := binDir(t), t.TempDir()
	caps := map[string]string{}
	for i, rel := range sharedTunnelCaptures {
		caps[fmt.Sprintf("shared%d", i)] = testenv.Pcap(t, rel)
	}
	built := filepath.Join(work, "wikipedia.vxlan-gre.pcap")
	if _, _, err := encaptest.File(encaptest.VXLANInGR, testenv.Pcap(t, "zeek/wikipedia.pcap"), built); err != nil {
		t.Fatal(err)
	}
	caps["built-vxlan-in-gre"] = built
	for id, path := range caps {
		t.Run(id, func(t *testing.T) {
			dir := t.TempDir()
			out, blocks := filepath.Join(dir, "flows.json"), filepath.Join(dir, "blocks")
			run(t, nil, filepath.Join(bin, "tapir-sensor"), "-r", path, "--sensor-id", id, "--community-seed", "4242",
				"--flows-out", out, "--blocks-out", blocks, "--idle-timeout", "87600h", "--active-timeout", "87600h")
			checkTunnelPcaps(t, path, 4242, e2etest.JSONLines[tunnelFlowLineID](t, readFile(t, out)), false, func(cid string, tunnel bool) []pcapFrame {
				p := filepath.Join(t.TempDir(), "answer.pcap")
				run(t, nil, filepath.Join(bin, "tapir"), "pcap", "--blocks", blocks, "--community-id", cid, "--community-seed", "4242",
					"-o", p, fmt.Sprintf("--tunnel=%v", tunnel))
				return readFrames(t, p)
			})
		})
	}
}

// tunnelFlowLineID is a flow line with its flow ID.
type tunnelFlowLineID struct {
	tunnelFlowLine
	Tapir struct {
		FlowID     string `json:"flow_id"`
		Final      bool   `json:"final"`
		TunnelFlow bool   `json:"tunnel_flow"`
	} `json:"tapir"`
}

// checkTunnelPcaps checks, for every final tunnel flow line, that pull
// by its Community ID (and by its flow ID when byFlowID) with tunnel set
// gives the frames of path whose outermost 5-tuple is the tunnel's, and
// without it the frames tshark gives the tunnel's Community ID (at seed)
// when there are any, else the same.
func checkTunnelPcaps(t *testing.T, path string, seed int, lines []tunnelFlowLineID, byFlowID bool, pull func(id string, tunnel bool) []pcapFrame) {
	t.Helper()
	frames, keys, cids := readFrames(t, path), tsharkOuterKeys(t, path), tsharkIDs(t, path, seed)
	if len(frames) != len(keys) || len(frames) != len(cids) {
		t.Fatalf("%d frames, tshark read %d and %d", len(frames), len(keys), len(cids))
	}
	n := 0
	for _, l := range lines {
		if !l.Tapir.Final || !l.Tapir.TunnelFlow {
			continue
		}
		n++
		var whole, own []pcapFrame
		for i, k := range keys {
			if k == l.key() {
				whole = append(whole, frames[i])
			}
			if cids[i] == l.Network.CommunityID {
				own = append(own, frames[i])
			}
		}
		sortFrames(whole)
		sortFrames(own)
		byDefault := whole
		if len(own) > 0 {
			byDefault = own
		}
		ids := []string{l.Network.CommunityID}
		if byFlowID {
			ids = append(ids, l.Tapir.FlowID)
		}
		for _, id := range ids {
			for _, tunnel := range []bool{true, false} {
				want := whole
				if !tunnel {
					want = byDefault
				}
				got := pull(id, tunnel)
				sortFrames(got)
				if err := sameFrames(got, want); err != nil {
					t.Errorf("tunnel %s (%s, tunnel=%v): %v", l.key(), id, tunnel, err)
				}
			}
		}
		t.Logf("tunnel %s: %d frames, equal to tshark's outer 5-tuple selection; %d of its own", l.key(), len(whole), len(own))
	}
	if n == 0 {
		t.Fatal("no tunnel flow")
	}
}

// sameFrames reports the first difference between two sorted frame lists.
func sameFrames(got, want []pcapFrame) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d frames, tshark selects %d", len(got), len(want))
	}
	for i := range got {
		if got[i].ts != want[i].ts || !bytes.Equal([]byte(got[i].data), []byte(want[i].data)) {
			return fmt.Errorf("frame %d differs (time %d, %d bytes; want time %d, %d bytes)", i, got[i].ts, len(got[i].data), want[i].ts, len(want[i].data))
		}
	}
	return nil
}
