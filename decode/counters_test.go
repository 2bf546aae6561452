package decode

import (
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestCountersNonIP checks the ethertype buckets against tshark on the
// non-IP captures: every ARP frame tshark sees lands in EtherARP, every
// Ethernet loopback frame in EtherLoopback, and none is counted as IP.
func TestCountersNonIP(t *testing.T) {
	tshark := testenv.Tool(t, "tshark")
	dir := testenv.Pcaps(t)
	cases := []struct {
		file   string
		proto  string // tshark frame.protocols element
		bucket EtherBucket
	}{
		{"community-id-spec/arp.pcap", "arp", EtherARP},
		{"zeek/linuxsll-arp.pcap", "arp", EtherARP},
		{"tcpdump/loopback.pcap", "loop", EtherLoopback},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			pks, err := readCapture(dir + "/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := runTshark(tshark, dir+"/"+tc.file)
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, r := range rows {
				if strings.Contains(":"+strings.Join(r[fProtocols], ",")+":", ":"+tc.proto+":") {
					want++
				}
			}
			if want == 0 {
				t.Fatalf("tshark sees no %s in %s", tc.proto, tc.file)
			}
			var c Counters
			var p Packet
			for _, pk := range pks {
				Decode(pk.link, pk.data, &p)
				c.Observe(&p, pk.wireLen)
			}
			if got := c.EtherTypes[tc.bucket]; got != uint64(want) {
				t.Errorf("%v bucket: %d, tshark %d", tc.bucket, got, want)
			}
			if c.Unsupported != uint64(len(pks)) {
				t.Errorf("unsupported %d of %d non-IP frames", c.Unsupported, len(pks))
			}
			var ip uint64
			for _, n := range c.IPProto {
				ip += n
			}
			if ip != 0 {
				t.Errorf("%d non-IP frames counted per IP protocol", ip)
			}
		})
	}
}

// TestCountersMerge counts every shared packet twice, once in one
// Counters and once split over two workers by packet parity, and checks
// that merging the workers gives the same totals, and that the buckets add
// up.
func TestCountersMerge(t *testing.T) {
	var whole, w0, w1 Counters
	var p Packet
	var withTuple, frags uint64
	for _, c := range allCaptures(t) {
		for i, pk := range c.packets {
			Decode(pk.link, pk.data, &p)
			whole.Observe(&p, pk.wireLen)
			if i%2 == 0 {
				w0.Observe(&p, pk.wireLen)
			} else {
				w1.Observe(&p, pk.wireLen)
			}
			if p.HasTuple {
				withTuple++
			}
			if p.IsFragment {
				frags++
			}
		}
	}
	merged := w0
	merged.Merge(&w1)
	if merged.Packets != whole.Packets || merged.Bytes != whole.Bytes || merged.IPProto != whole.IPProto ||
		merged.EtherTypes != whole.EtherTypes || merged.Truncated != whole.Truncated ||
		merged.Unsupported != whole.Unsupported || merged.Fragments != whole.Fragments ||
		merged.VLANTagged != whole.VLANTagged || merged.MPLS != whole.MPLS {
		t.Fatalf("merged %+v\nwhole %+v", merged, whole)
	}
	var sumEther, sumProto uint64
	for _, n := range whole.EtherTypes {
		sumEther += n
	}
	for _, n := range whole.IPProto {
		sumProto += n
	}
	if sumEther != whole.Packets {
		t.Errorf("ethertype buckets sum to %d of %d packets", sumEther, whole.Packets)
	}
	if sumProto != withTuple {
		t.Errorf("IP protocol counts sum to %d, %d packets had an IP header", sumProto, withTuple)
	}
	if whole.Fragments != frags || frags == 0 {
		t.Errorf("fragments %d, decoded %d", whole.Fragments, frags)
	}
	if whole.VLANTagged == 0 || whole.MPLS == 0 {
		t.Errorf("no VLAN or MPLS counted: %+v", whole)
	}
	var unknown uint64
	for _, u := range whole.Unknown[:whole.NUnknown] {
		unknown += u.Packets
	}
	if unknown > whole.EtherTypes[EtherOther] {
		t.Errorf("unknown ethertype record %d exceeds other bucket %d", unknown, whole.EtherTypes[EtherOther])
	}
	t.Logf("packets %d, truncated %d, unsupported %d, fragments %d, other ethertypes %d %v",
		whole.Packets, whole.Truncated, whole.Unsupported, whole.Fragments, whole.EtherTypes[EtherOther], whole.Unknown[:whole.NUnknown])
}

// TestCountersUnknownBounded records more distinct unknown ethertypes
// than fit and checks that the record stays bounded and the other bucket
// exact, including across Merge.
func TestCountersUnknownBounded(t *testing.T) {
	var a, b Counters
	for i := 0; i < 3*MaxUnknownEtherTypes; i++ {
		p := Packet{EtherType: 0xa000 + uint16(i), Status: StatusUnsupported}
		a.Observe(&p, 60)
		a.Observe(&p, 60)
		b.Observe(&p, 60)
	}
	if int(a.NUnknown) != MaxUnknownEtherTypes || a.EtherTypes[EtherOther] != 6*MaxUnknownEtherTypes {
		t.Fatalf("record %d, other %d", a.NUnknown, a.EtherTypes[EtherOther])
	}
	a.Merge(&b)
	if int(a.NUnknown) != MaxUnknownEtherTypes || a.EtherTypes[EtherOther] != 9*MaxUnknownEtherTypes ||
		a.Unknown[0].Packets != 3 || a.Unsupported != 9*MaxUnknownEtherTypes {
		t.Fatalf("after merge: %+v", a.Unknown)
	}
}
