package flowtable

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/internal/tsharkoracle"

	"github.com/tapir-sensor/tapir/flow"
)

// tsharkFlows computes the oracle: frame.len and packets summed per
// key from tsharkoracle.Frames (IP reassembly off; non-first fragments
// in their datagram's flow, or port-less when the datagram's first
// fragment is missing). It also returns the number of IP frames and of
// non-first fragments whose first fragment is in the file; ok is false
// when tshark failed on the file.
func tsharkFlows(tb testing.TB, path string) (flows map[tsharkoracle.Key]tsharkoracle.Sum, nIP, resolved int, ok bool) {
	tb.Helper()
	frames, ok := tsharkoracle.Frames(tb, path)
	if !ok {
		return nil, 0, 0, false
	}
	for _, f := range frames {
		if f.IP {
			nIP++
		}
		if f.Resolved {
			resolved++
		}
	}
	return tsharkoracle.Sums(frames), nIP, resolved, true
}

// recordFlows sums final records per key and returns their packets.
func recordFlows(recs []flow.Record) (map[tsharkoracle.Key]tsharkoracle.Sum, int) {
	var finals []flow.Record
	for _, r := range recs {
		if r.Reason.Final() {
			finals = append(finals, r)
		}
	}
	sums := tsharkoracle.RecordSums(finals)
	n := 0
	for _, s := range sums {
		n += int(s.Packets)
	}
	return sums, n
}

func diffFlows(want, got map[tsharkoracle.Key]tsharkoracle.Sum) []string {
	var d []string
	for k, w := range want {
		if g := got[k]; g != w {
			d = append(d, fmt.Sprintf("%v: tshark %d pkts %d bytes, table %d pkts %d bytes", k, w.Packets, w.Bytes, g.Packets, g.Bytes))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("%v: not in tshark, table %d pkts %d bytes", k, g.Packets, g.Bytes))
		}
	}
	sort.Strings(d)
	return d
}

// TestMatchesTshark feeds every shared capture through a table and
// compares packets and bytes per flow with tshark.
func TestMatchesTshark(t *testing.T) {
	testenv.Tool(t, "tshark")
	dir := testenv.Pcaps(t)
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n := d.Name()
		if !d.IsDir() && !strings.Contains(p, "pcapgo-tests") &&
			(strings.HasSuffix(n, ".pcap") || strings.HasSuffix(n, ".pcap.gz") || strings.HasSuffix(n, ".pcapng")) {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 40 {
		t.Fatalf("only %d captures under %s", len(paths), dir)
	}
	for _, p := range paths {
		rel, _ := filepath.Rel(dir, p)
		t.Run(rel, func(t *testing.T) {
			want, nIP, _, ok := tsharkFlows(t, p)
			if !ok {
				t.Skip("tshark cannot read it")
			}
			pkts := readCapture(t, p)
			infos, unsupported := packetInfos(pkts)
			if unsupported == len(pkts) && nIP > 0 {
				t.Skip("link type not handled by the decoder")
			}
			recs, st := collect(t, longConfig(), infos)
			got, n := recordFlows(recs)
			if n != nIP || len(infos) != nIP {
				t.Errorf("tshark saw %d IP frames, decoder %d, records count %d", nIP, len(infos), n)
			}
			if st.Active != 0 || st.Created != uint64(len(recs)) {
				t.Errorf("after flush: active %d, created %d, records %d", st.Active, st.Created, len(recs))
			}
			for _, d := range diffFlows(want, got) {
				t.Error(d)
			}
		})
	}
}

// TestFragmentsJoinDatagramFlow checks the fragment captures in detail:
// every non-first fragment whose first fragment is in the file is counted
// in the datagram's flow (tshark's datagram mapping), the others in a
// port-less flow as orphans.
func TestFragmentsJoinDatagramFlow(t *testing.T) {
	testenv.Tool(t, "tshark")
	dir := testenv.Pcaps(t)
	totalReordered := 0
	defer func() {
		if totalReordered == 0 {
			t.Error("no fragment went through the held list")
		}
	}()
	for _, rel := range tsharkoracle.FragmentCaptures {
		t.Run(rel, func(t *testing.T) {
			p := filepath.Join(dir, rel)
			want, nIP, resolved, ok := tsharkFlows(t, p)
			if !ok {
				t.Fatal("tshark failed on it")
			}
			infos, _ := packetInfos(readCapture(t, p))
			nonFirst := 0
			for _, in := range infos {
				if in.Frag.IsFragment && in.Frag.Offset != 0 {
					nonFirst++
				}
			}
			if nonFirst == 0 {
				t.Fatal("no non-first fragments decoded")
			}
			check := func(t *testing.T, infos []PacketInfo, reversed bool) {
				recs, st := collect(t, longConfig(), infos)
				got, n := recordFlows(recs)
				if n != nIP {
					t.Errorf("tshark %d IP frames, records %d", nIP, n)
				}
				for _, d := range diffFlows(want, got) {
					t.Error(d)
				}
				if int(st.FragmentsResolved) != resolved || int(st.FragmentsOrphaned) != nonFirst-resolved {
					t.Errorf("resolved %d orphaned %d, tshark mapping: %d resolved of %d non-first", st.FragmentsResolved, st.FragmentsOrphaned, resolved, nonFirst)
				}
				// Fragments whose first fragment comes only later in this input.
				wantReordered := 0
				for i := range infos {
					if !infos[i].Frag.IsFragment || infos[i].Frag.Offset == 0 {
						continue
					}
					before, after := false, false
					for j := range infos {
						if infos[j].Frag.IsFragment && infos[j].Frag.Offset == 0 && fragKeyOf(&infos[j]) == fragKeyOf(&infos[i]) {
							before = before || j < i
							after = after || j > i
						}
					}
					if after && !before {
						wantReordered++
					}
				}
				if int(st.FragmentsReordered) != wantReordered {
					t.Errorf("reordered fragments %d, want %d (reversed input %v)", st.FragmentsReordered, wantReordered, reversed)
				}
				totalReordered += int(st.FragmentsReordered)
			}
			t.Run("in-order", func(t *testing.T) { check(t, infos, false) })
			// Reversed order (timestamps kept): every non-first fragment
			// now precedes its first fragment and must be held, then
			// resolved when the first fragment arrives.
			rev := make([]PacketInfo, len(infos))
			for i := range infos {
				rev[len(infos)-1-i] = infos[i]
			}
			t.Run("reversed", func(t *testing.T) { check(t, rev, true) })
		})
	}
}
