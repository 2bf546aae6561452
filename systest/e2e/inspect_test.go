package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/collector/api"
	"github.com/tapir-sensor/tapir/collector/inspect/inspecttest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// inspectPacket is a line of the packet list answer.
type inspectPacket struct {
	Time     time.Time `json:"time"`
	Length   int       `json:"length"`
	Captured int       `json:"captured"`
}

// TestInspectThroughBinaries streams HTTP captures through tapir-sensor
// to tapir-collector and, for every TCP flow `tapir flows` lists, asks
// the collector's inspection API for it by flow ID: the packet list
// equals tshark's frames of that Community ID in the original capture
// (count, times, lengths), packet 1's
// bytes are tshark's, and Follow Stream's ascii form equals the body of
// `tshark -q -z follow,tcp,ascii,A,B`. A flows:read-only token is
// refused (403) and every call is in the audit log.
func TestInspectThroughBinaries(t *testing.T) {
	needBinaries(t)
	testenv.Tool(t, "tshark")
	work := t.TempDir()
	rels := []string{"zeek/get.pcap", "zeek/http-vlan-0.pcap", "zeek/wikipedia.pcap", "arkime/dns-tcp.pcap",
		"arkime/curl-enabled-tls13.pcap"}
	var ids []string
	for i := range rels {
		ids = append(ids, fmt.Sprintf("insp%d", i))
	}
	p := newPKI(t, filepath.Join(work, "certs"), ids...)
	col := prepareCollector(t, filepath.Join(work, "collector"), p)
	const reader = "e2e-flows-reader-token-0123456789"
	f, err := os.OpenFile(filepath.Join(col.dir, "tokens.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "%q:\n  subject: e2e-reader\n  roles: [flows:read]\n", api.HashToken(reader))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	col.start()
	hc := apiClient(t, p, "127.0.0.1")
	get := func(token, path string) (int, []byte) {
		req, _ := http.NewRequest("GET", "https://"+col.api+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	calls, anyFlow := 0, ""
	for i, rel := range rels {
		plain := testenv.Plain(t, testenv.Pcap(t, rel))
		args := append([]string{bin.sensor, "-r", plain}, col.sensorArgs(ids[i], filepath.Join(work, "spool", ids[i]))...)
		args = append(append(args, longTimeouts...), "--drain-timeout", "10s")
		sp := startProc(t, args...)
		if code, _ := sp.Wait(120 * time.Second); code != 0 {
			t.Fatalf("%s: tapir-sensor exited %d:\n%s", rel, code, sp.Log.String())
		}
		frames, ok := readFrames(t, plain)
		if !ok {
			t.Fatalf("%s: tshark cannot read it", rel)
		}
		byCID := map[string][]frame{}
		for _, fr := range frames {
			byCID[fr.cid] = append(byCID[fr.cid], fr)
		}
		// The flow instances of each Community ID in this capture (a
		// Community ID spans captures: http-vlan-0 repeats get): a flow
		// ID names one, whose frames tshark's Community ID gives when
		// the capture holds no other.
		instances := map[string]map[string]ecsFlow{}
		for _, w := range windows(frames) {
			for _, r := range col.flows(t, w) {
				if r.Tapir.SensorID != ids[i] || r.Network.Transport != "tcp" {
					continue
				}
				cid := r.Network.CommunityID
				if instances[cid] == nil {
					instances[cid] = map[string]ecsFlow{}
				}
				instances[cid][r.Tapir.FlowID] = r
			}
		}
		compared := 0
		for cid, flows := range instances {
			if len(flows) != 1 {
				t.Logf("%s: Community ID %s names %d flows here; not compared", rel, cid, len(flows))
				continue
			}
			for id, r := range flows {
				anyFlow = id
				base := "/api/v1/flows/" + id
				checkPacketList(t, get, col.token, base, byCID[cid])
				client := r.Source.IP + ":" + fmt.Sprint(r.Source.Port)
				server := r.Destination.IP + ":" + fmt.Sprint(r.Destination.Port)
				want := inspecttest.Follow(t, plain, "tcp", client, server)
				if code, got := get(col.token, base+"/stream?format=ascii"); code != http.StatusOK || string(got) != want {
					t.Fatalf("%s flow %s: %d, Follow Stream differs from tshark\ngot:\n%.1500s\nwant:\n%.1500s", rel, id, code, got, want)
				}
				calls += 3
				compared++
			}
		}
		if compared == 0 {
			t.Fatalf("%s: no TCP flow compared", rel)
		}
		t.Logf("%s: %d TCP flows: packet lists, packet 1 and Follow Stream equal tshark's", rel, compared)
	}
	checkReaderRefused(t, get, reader, anyFlow)
	calls += 2
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(readFile(t, col.audit)), "\n") {
		var e struct{ Endpoint string }
		if json.Unmarshal([]byte(l), &e) == nil && (e.Endpoint == "packets" || e.Endpoint == "packet" || e.Endpoint == "stream") {
			n++
		}
	}
	if n != calls {
		t.Errorf("audit log holds %d inspection entries for %d calls", n, calls)
	}
}

// checkPacketList compares a flow's packet list and its first packet's
// bytes with tshark's frames of the flow.
func checkPacketList(t *testing.T, get func(string, string) (int, []byte), token, base string, want []frame) {
	t.Helper()
	code, body := get(token, base+"/packets?limit=10000")
	var list struct {
		Packets []inspectPacket `json:"packets"`
		More    bool            `json:"more"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &list) != nil || list.More || len(list.Packets) != len(want) {
		t.Fatalf("%s packets: %d, %d packets (more %v), tshark %d: %.300s", base, code, len(list.Packets), list.More, len(want), body)
	}
	for i, p := range list.Packets {
		ep := fmt.Sprintf("%d.%09d", p.Time.Unix(), p.Time.Nanosecond())
		if ep != want[i].epoch || p.Length != want[i].length || p.Captured != want[i].capLen {
			t.Fatalf("%s packet %d: %+v, tshark %s", base, i+1, p, want[i].String())
		}
	}
	code, body = get(token, base+"/packets/1")
	var one struct {
		Data []byte `json:"data"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &one) != nil || string(one.Data) != string(want[0].data) {
		t.Fatalf("%s packet 1: %d, bytes differ from tshark's", base, code)
	}
}

// checkReaderRefused: a flows:read token may read a flow's record, not
// its packets or stream.
func checkReaderRefused(t *testing.T, get func(string, string) (int, []byte), reader, flowID string) {
	t.Helper()
	base := "/api/v1/flows/" + flowID
	if code, body := get(reader, base); code != http.StatusOK {
		t.Errorf("flows:read token on the record: %d %s", code, body)
	}
	for _, s := range []string{"/packets", "/stream"} {
		if code, _ := get(reader, base+s); code != http.StatusForbidden {
			t.Errorf("flows:read token on %s: %d, want 403", s, code)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
