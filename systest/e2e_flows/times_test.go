package e2eflows

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// nfTimes reads every flow nfcapd wrote in dir (nfdump -o json) as
// "src|dst|proto|packets|bytes|startMs|endMs" lines, sorted. swapped
// orders each flow's two times (nfdump 1.7.1 reads IPFIX
// flowStartSysUpTime as the end and flowEndSysUpTime as the start).
func nfTimes(t *testing.T, dir string, swapped bool) []string {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, "nfdump"), "-R", dir, "-o", "json")
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nfdump: %v: %s", err, out)
	}
	var flows []struct {
		First, Last string
		Src4        string `json:"src4_addr"`
		Dst4        string `json:"dst4_addr"`
		Proto       int
		Packets     uint64 `json:"in_packets"`
		Bytes       uint64 `json:"in_bytes"`
		Src6Addr    string `json:"src6_addr"`
		Dst6Addr    string `json:"dst6_addr"`
	}
	if bytes.Contains(out, []byte("No matching flows")) {
		return nil
	}
	if err := json.Unmarshal(out, &flows); err != nil {
		t.Fatalf("nfdump json: %v: %s", err, e2etest.LastLines(string(out), 5))
	}
	var rows []string
	for _, f := range flows {
		ts, err1 := time.Parse("2006-01-02T15:04:05.000", f.First)
		te, err2 := time.Parse("2006-01-02T15:04:05.000", f.Last)
		if err1 != nil || err2 != nil {
			t.Fatalf("nfdump time %q %q: %v %v", f.First, f.Last, err1, err2)
		}
		if swapped && te.Before(ts) {
			ts, te = te, ts
		}
		src, dst := f.Src4, f.Dst4
		if src == "" {
			src, dst = f.Src6Addr, f.Dst6Addr
		}
		rows = append(rows, fmt.Sprintf("%s|%s|%d|%d|%d|%d|%d", src, dst, f.Proto, f.Packets, f.Bytes, ts.UnixMilli(), te.UnixMilli()))
	}
	sort.Strings(rows)
	return rows
}

// recTimes renders tapir's records as nfTimes does (source direction;
// softflowd exports unidirectional flows).
func recTimes(t *testing.T, recs []flow.Record) []string {
	t.Helper()
	var rows []string
	for i := range recs {
		r := &recs[i]
		if r.End.Before(r.Start) {
			t.Errorf("record ends before it starts: %v %v %v", r.Tuple, r.Start, r.End)
		}
		rows = append(rows, fmt.Sprintf("%s|%s|%d|%d|%d|%d|%d", r.Tuple.Src.Netip(r.Tuple.Family), r.Tuple.Dst.Netip(r.Tuple.Family),
			r.Tuple.Proto, r.Source.Packets, r.Source.Bytes, r.Start.UnixMilli(), r.End.UnixMilli()))
	}
	sort.Strings(rows)
	return rows
}

// TestSoftflowdTimesMatchNfdump: softflowd exports each capture as
// NetFlow v5, v9 and IPFIX to tapir and nfcapd; every flow's start and
// end equal nfdump's to the millisecond. softflowd's IPFIX gives
// flowStart/EndSysUpTime relative to systemInitTimeMilliseconds sent in
// an options record: tapir honours it (before, every IPFIX flow had
// start = end = the export time). nfdump 1.7.1 swaps the two IPFIX
// times; they are compared as a pair.
func TestSoftflowdTimesMatchNfdump(t *testing.T) {
	for _, rel := range captures {
		pcap := testenv.Plain(t, testenv.Pcap(t, rel))
		for _, v := range []int{5, 9, 10} {
			t.Run(fmt.Sprintf("%s/v%d", rel, v), func(t *testing.T) {
				col := startInput(t, "-")
				port, stop := nfcapd(t)
				softflowd(t, pcap, v, col.port, port)
				time.Sleep(300 * time.Millisecond)
				got := col.records()
				dir, _ := stop()
				diff(t, "flow times", recTimes(t, got), nfTimes(t, dir, v == 10))
				long := 0
				for i := range got {
					if got[i].End.After(got[i].Start) {
						long++
					}
				}
				t.Logf("%d flows, %d with a duration, times equal nfdump's", len(got), long)
			})
		}
	}
}

// v9PastUptime crafts a NetFlow v9 datagram (template 256 and one UDP
// record) whose record's Last Switched is later than the header's
// sysUpTime: exporters stamp the header before the last packets of the
// flows they flush.
func v9PastUptime(seq, exportSecs, uptime, first, last uint32) []byte {
	be := binary.BigEndian
	fields := [][2]uint16{{8, 4}, {12, 4}, {7, 2}, {11, 2}, {4, 1}, {2, 4}, {1, 4}, {22, 4}, {21, 4}}
	var b []byte
	b = be.AppendUint16(b, 9)
	b = be.AppendUint16(b, 2)
	b = be.AppendUint32(b, uptime)
	b = be.AppendUint32(b, exportSecs)
	b = be.AppendUint32(b, seq)
	b = be.AppendUint32(b, 1)
	b = be.AppendUint16(b, 0)
	b = be.AppendUint16(b, uint16(8+4*len(fields)))
	b = be.AppendUint16(b, 256)
	b = be.AppendUint16(b, uint16(len(fields)))
	for _, f := range fields {
		b = be.AppendUint16(b, f[0])
		b = be.AppendUint16(b, f[1])
	}
	var rec []byte
	rec = append(rec, 192, 0, 2, 1, 198, 51, 100, 2)
	rec = be.AppendUint16(rec, 40000+uint16(seq))
	rec = be.AppendUint16(rec, 53)
	rec = append(rec, flow.ProtoUDP)
	rec = be.AppendUint32(rec, 2+seq)
	rec = be.AppendUint32(rec, 150)
	rec = be.AppendUint32(rec, first)
	rec = be.AppendUint32(rec, last)
	for len(rec)%4 != 0 {
		rec = append(rec, 0)
	}
	b = be.AppendUint16(b, 256)
	b = be.AppendUint16(b, uint16(4+len(rec)))
	return append(b, rec...)
}

// v5Uptime crafts a NetFlow v5 datagram with one TCP record whose First
// and Last are sysUpTime ms.
func v5Uptime(seq, exportSecs, uptime, first, last uint32) []byte {
	be := binary.BigEndian
	b := make([]byte, 24+48)
	be.PutUint16(b[0:], 5)
	be.PutUint16(b[2:], 1)
	be.PutUint32(b[4:], uptime)
	be.PutUint32(b[8:], exportSecs)
	be.PutUint32(b[16:], seq)
	r := b[24:]
	copy(r[0:], []byte{192, 0, 2, 7, 198, 51, 100, 9})
	be.PutUint32(r[16:], 3+seq)
	be.PutUint32(r[20:], 180)
	be.PutUint32(r[24:], first)
	be.PutUint32(r[28:], last)
	be.PutUint16(r[32:], 40000)
	be.PutUint16(r[34:], 443)
	r[38] = flow.ProtoTCP
	return b
}

// TestUptimeTimesMatchNfdump sends NetFlow v9 and v5 records whose times
// run past the exporter's uptime (and ones whose uptime counter wrapped
// within the flow) to tapir and nfcapd: tapir's times equal nfdump's
// (before, such an end time was put 2^32 ms, 49.7 days, early).
func TestUptimeTimesMatchNfdump(t *testing.T) {
	col := startInput(t, "-")
	port, stop := nfcapd(t)
	const exp, up = 1_700_000_000, 1_000_000
	dgs := [][]byte{
		v9PastUptime(1, exp, up, 990_000, 999_000),
		v9PastUptime(2, exp, up, 999_000, 1_000_500),
		v9PastUptime(3, exp, up, 1_000_200, 1_000_700),
		v9PastUptime(4, exp, up, 1<<32-1000, 500),
		v5Uptime(1, exp, up, 990_000, 999_000),
		v5Uptime(2, exp, up, 999_000, 1_000_500),
		v5Uptime(3, exp, up, 1_000_200, 1_000_700),
		v5Uptime(4, exp, up, 1<<32-1000, 500),
		v5Uptime(5, exp, 1000, 1<<32-5000, 1<<32-2000),
	}
	c, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(col.port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, d := range dgs {
		_, _ = c.Write(d)
		_, _ = n.Write(d)
	}
	time.Sleep(300 * time.Millisecond)
	got := col.records()
	dir, _ := stop()
	want := nfTimes(t, dir, false)
	if len(want) != len(dgs) {
		t.Fatalf("nfdump read %d flows of %d", len(want), len(dgs))
	}
	diff(t, "flow times", recTimes(t, got), want)
}
