// Package ingesttest holds test helpers for the sensor-to-collector link:
// an in-memory storage.Writer, a throwaway PKI, and flow records and
// packet blocks derived from a real capture. It is for tests only.
package ingesttest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testdata"
	"github.com/tapir-sensor/tapir/internal/tlsconfig"
	"github.com/tapir-sensor/tapir/storage"
)

// ErrInjected is the error MemStore returns while failing.
var ErrInjected = errors.New("ingesttest: injected store failure")

// MemStore is an in-memory storage.Writer with the store contract's
// (SensorID, Epoch, Seq) deduplication. It is safe for concurrent use.
type MemStore struct {
	mu      sync.Mutex
	applied map[seqSpace]map[uint64]bool
	// Batches are the applied batches in write order (deep copies).
	batches []storage.Batch
	failing bool
	writes  int
	delay   time.Duration
}

// seqSpace is one sensor's sequence space: its id and epoch.
type seqSpace struct {
	sensor string
	epoch  uint64
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{applied: map[seqSpace]map[uint64]bool{}} }

// SetFailing makes Write fail with ErrInjected or succeed again.
func (m *MemStore) SetFailing(f bool) {
	m.mu.Lock()
	m.failing = f
	m.mu.Unlock()
}

// SetDelay makes every Write take at least d (a slow store).
func (m *MemStore) SetDelay(d time.Duration) {
	m.mu.Lock()
	m.delay = d
	m.mu.Unlock()
}

// Write implements storage.Writer.
func (m *MemStore) Write(ctx context.Context, b *storage.Batch) (bool, error) {
	m.mu.Lock()
	d := m.delay
	m.mu.Unlock()
	time.Sleep(d)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	if m.failing {
		return false, ErrInjected
	}
	sp := seqSpace{b.SensorID, b.Epoch}
	s := m.applied[sp]
	if s == nil {
		s = map[uint64]bool{}
		m.applied[sp] = s
	}
	if s[b.Seq] {
		return false, nil
	}
	s[b.Seq] = true
	c := storage.Batch{SensorID: b.SensorID, Epoch: b.Epoch, Seq: b.Seq, Records: slices.Clone(b.Records)}
	for _, bl := range b.Blocks {
		c.Blocks = append(c.Blocks, storage.Block{Meta: bl.Meta, Encoded: slices.Clone(bl.Encoded)})
	}
	m.batches = append(m.batches, c)
	return true, nil
}

// DurableSeq implements storage.Writer.
func (m *MemStore) DurableSeq(ctx context.Context, sensorID string, epoch uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var hi uint64
	for s := range m.applied[seqSpace{sensorID, epoch}] {
		hi = max(hi, s)
	}
	return hi, nil
}

// Batches returns a copy of the applied batches of sensorID, in write order.
func (m *MemStore) Batches(sensorID string) []storage.Batch {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []storage.Batch
	for _, b := range m.batches {
		if b.SensorID == sensorID {
			out = append(out, b)
		}
	}
	return out
}

// Writes returns how many Write calls were made (failed ones included).
func (m *MemStore) Writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writes
}

// PKI is a throwaway CA directory with a server certificate for
// localhost/127.0.0.1 and sensor certificates.
type PKI struct{ Dir string }

// NewPKI creates a CA and a server certificate in a test temp dir, and
// sensor certificates for the ids given.
func NewPKI(t testing.TB, sensors ...string) *PKI {
	t.Helper()
	dir := t.TempDir()
	if err := tlsconfig.GenerateCA(dir); err != nil {
		t.Fatal(err)
	}
	if err := tlsconfig.IssueServer(dir, "localhost", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	for _, s := range sensors {
		if err := tlsconfig.IssueSensor(dir, s); err != nil {
			t.Fatal(err)
		}
	}
	return &PKI{Dir: dir}
}

// Server returns the collector's TLS configuration.
func (p *PKI) Server() tlsconfig.Config {
	c, k := tlsconfig.Paths(p.Dir, "server")
	return tlsconfig.Config{CAFile: tlsconfig.CAPath(p.Dir), CertFile: c, KeyFile: k}
}

// Sensor returns a sensor's TLS configuration.
func (p *PKI) Sensor(id string) tlsconfig.Config {
	c, k := tlsconfig.Paths(p.Dir, "sensor-"+id)
	return tlsconfig.Config{CAFile: tlsconfig.CAPath(p.Dir), CertFile: c, KeyFile: k, ServerName: "localhost"}
}

// Traffic is flow records and encoded packet blocks derived from a real
// capture.
type Traffic struct {
	Records []flow.Record
	Blocks  [][]byte
	Packets int
}

// CaptureTraffic reads the shared captures community-id-spec/tcp.pcap and
// udp.pcap and turns them into one record per flow and one block per
// (flow, up to perBlock packets), labelled with sensorID. Expected values
// in tests come from these inputs, not from constants.
func CaptureTraffic(t testing.TB, sensorID string, perBlock int) *Traffic {
	t.Helper()
	enc, err := block.NewEncoder(block.DefaultEncoderConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	tr := &Traffic{}
	type fl struct {
		rec *flow.Record
		b   block.Builder
		seq uint32
	}
	flows := map[flow.Key]*fl{}
	var order []flow.Key
	var n uint32
	emit := func(f *fl) {
		if f.b.Packets() == 0 {
			return
		}
		enc2, _, err := f.b.Encode(enc, nil)
		if err != nil {
			t.Fatal(err)
		}
		tr.Blocks = append(tr.Blocks, enc2)
		f.seq++
		m := f.b.Meta()
		m.Seq = f.seq
		f.b.Reset(m)
	}
	for _, name := range []string{"community-id-spec/tcp.pcap", "community-id-spec/udp.pcap"} {
		f, err := os.Open(testdata.Pcap(t, name))
		if err != nil {
			t.Fatal(err)
		}
		r, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		for {
			data, ci, err := r.ReadPacketData()
			if err != nil {
				break
			}
			p := gopacket.NewPacket(data, r.LinkType(), gopacket.NoCopy)
			ip, ok := p.NetworkLayer().(*layers.IPv4)
			if !ok {
				continue
			}
			tu := flow.Tuple{Family: flow.FamilyIPv4, Proto: uint8(ip.Protocol),
				Src: flow.AddrFrom4([4]byte(ip.SrcIP.To4())), Dst: flow.AddrFrom4([4]byte(ip.DstIP.To4()))}
			switch l := p.TransportLayer().(type) {
			case *layers.TCP:
				tu.SrcPort, tu.DstPort = uint16(l.SrcPort), uint16(l.DstPort)
			case *layers.UDP:
				tu.SrcPort, tu.DstPort = uint16(l.SrcPort), uint16(l.DstPort)
			}
			key, _ := tu.Key()
			x := flows[key]
			if x == nil {
				n++
				id := flow.NewID(ci.Timestamp, flow.SensorHash(sensorID), n)
				x = &fl{rec: &flow.Record{ID: id, SensorID: sensorID, Interface: filepath.Base(name),
					CommunityID: flow.CommunityID(0, tu), Tuple: tu, Start: ci.Timestamp.UTC(), Reason: flow.ReasonEndOfCapture}}
				x.b.Reset(block.Meta{Key: key, FlowID: id, CommunityID: x.rec.CommunityID, SensorID: sensorID,
					Interface: x.rec.Interface, LinkType: uint16(r.LinkType())})
				flows[key] = x
				order = append(order, key)
			}
			d := &x.rec.Source
			if tu.Src != x.rec.Tuple.Src || tu.SrcPort != x.rec.Tuple.SrcPort {
				d = &x.rec.Destination
			}
			d.Packets++
			d.Bytes += uint64(ci.Length)
			d.StoredPackets++
			d.StoredBytes += uint64(len(data))
			if d.First.IsZero() {
				d.First = ci.Timestamp.UTC()
			}
			d.Last = ci.Timestamp.UTC()
			x.rec.End = ci.Timestamp.UTC()
			x.b.Append(ci.Timestamp.UnixNano(), ci.Length, data)
			tr.Packets++
			if x.b.Packets() >= perBlock {
				emit(x)
			}
		}
		f.Close()
	}
	for _, k := range order {
		emit(flows[k])
		tr.Records = append(tr.Records, *flows[k].rec)
	}
	if len(tr.Records) == 0 || len(tr.Blocks) == 0 {
		t.Fatal(fmt.Errorf("no traffic derived from the captures"))
	}
	return tr
}
