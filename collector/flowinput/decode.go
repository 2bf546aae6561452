package flowinput

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"
	"github.com/netsampler/goflow2/v2/decoders/sflow"

	"github.com/tapir-sensor/tapir/flow"
)

// Protocol says how a listener's datagrams are decoded.
type Protocol uint8

// Listener protocols. ProtoNetFlow accepts NetFlow v5, v9 and IPFIX (the
// version field decides); ProtoSFlow accepts sFlow v5.
const (
	ProtoNetFlow Protocol = iota
	ProtoSFlow
)

// Decoder turns datagrams into flow records: it keeps per-exporter state
// (templates, sequence numbers, counters) and is safe for concurrent use
// (datagrams of one exporter are decoded one at a time).
type Decoder struct {
	seed      uint16
	maxExp    int
	templates *Templates
	m         *metrics
	seq       atomic.Uint32 // flow id counter

	mu        sync.RWMutex
	exporters map[netip.Addr]*exporter
	overflow  atomic.Uint64 // datagrams from exporters beyond maxExp
}

// Overflow returns how many datagrams came from exporters beyond
// MaxExporters (dropped undecoded).
func (d *Decoder) Overflow() uint64 { return d.overflow.Load() }

// exporter is one exporter's state.
type exporter struct {
	mu       sync.Mutex
	addr     string
	sensorID string
	hash     uint32
	tmpl     *exporterTemplates
	c        *exporterCounters
	// next expected sequence number per (version, domain); ok once seen.
	next map[uint64]uint32
	// sysInit is the IPFIX systemInitTimeMilliseconds (IE 160) per
	// observation domain, from the exporter's options records: the base
	// of flowStart/EndSysUpTime.
	sysInit map[uint32]uint64

	nf9   netflow.NFv9Packet
	ipfix netflow.IPFIXPacket
	v5    netflowlegacy.PacketNetFlowV5
	sf    sflow.Packet
	buf   bytes.Buffer
}

// NewDecoder builds a decoder that counts into m (not nil: New makes it
// on the Input's registerer). templates may be shared by several decoders
// (one per listener).
func NewDecoder(cfg Config, templates *Templates, m *metrics) *Decoder {
	d := &Decoder{seed: cfg.CommunitySeed, maxExp: cfg.MaxExporters, templates: templates, m: m,
		exporters: map[netip.Addr]*exporter{}}
	d.seq.Store(flow.RandomSeq()) // random per run: flow ids stay unique across restarts (see flow.ID)
	return d
}

// ErrTooManyExporters: a datagram came from an exporter beyond MaxExporters.
var ErrTooManyExporters = errors.New("flowinput: too many exporters")

func (d *Decoder) exporter(a netip.Addr) *exporter {
	a = a.Unmap()
	d.mu.RLock()
	e := d.exporters[a]
	d.mu.RUnlock()
	if e != nil {
		return e
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if e = d.exporters[a]; e != nil {
		return e
	}
	if len(d.exporters) >= d.maxExp {
		return nil
	}
	s := a.String()
	sid := flow.ExporterSensorPrefix + s
	e = &exporter{addr: s, sensorID: sid, hash: flow.SensorHash(sid), tmpl: d.templates.system(s),
		c: d.m.forExporter(s), next: map[uint64]uint32{}, sysInit: map[uint32]uint64{}}
	d.exporters[a] = e
	return e
}

// Stats returns every exporter's counters, by exporter address.
func (d *Decoder) Stats() map[string]ExporterStats {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make(map[string]ExporterStats, len(d.exporters))
	for _, e := range d.exporters {
		out[e.addr] = e.c.snapshot()
	}
	return out
}

// Decode decodes one datagram from the exporter at from and appends its
// flow records to out. Malformed, truncated and template-less parts are
// counted in the exporter's stats; the records decoded before a fault
// are kept. It never panics on any input.
func (d *Decoder) Decode(from netip.Addr, proto Protocol, data []byte, now time.Time, out []flow.Record) ([]flow.Record, error) {
	e := d.exporter(from)
	if e == nil {
		d.overflow.Add(1)
		d.m.droppedDatagrams.WithLabelValues("too_many_exporters").Inc()
		return out, ErrTooManyExporters
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.c.addDatagram()
	n0 := len(out)
	var err error
	if proto == ProtoSFlow {
		out, err = d.decodeSFlow(e, data, now, out)
	} else {
		out, err = d.decodeNetFlow(e, data, now, out)
	}
	if err != nil {
		e.c.addDecodeError()
	}
	e.c.addRecords(len(out) - n0)
	return out, err
}

func (d *Decoder) decodeNetFlow(e *exporter, data []byte, now time.Time, out []flow.Record) ([]flow.Record, error) {
	if len(data) < 4 {
		return out, errShort
	}
	e.buf.Reset()
	e.buf.Write(data)
	switch binary.BigEndian.Uint16(data) {
	case 5:
		// goflow2 allocates the header's count of records before
		// checking the length: cap the count at what the datagram holds.
		const v5Header, v5Record = 24, 48
		if len(data) < v5Header {
			return out, errShort
		}
		var errTrunc error
		fit := (len(data) - v5Header) / v5Record
		if int(binary.BigEndian.Uint16(data[2:])) > fit {
			binary.BigEndian.PutUint16(e.buf.Bytes()[2:], uint16(fit))
			errTrunc = errShort
		}
		e.v5 = netflowlegacy.PacketNetFlowV5{}
		if err := netflowlegacy.DecodeMessageVersion(&e.buf, &e.v5); err != nil {
			return out, err
		}
		out, err := d.fromV5(e, out)
		if err == nil {
			err = errTrunc
		}
		return out, err
	case 9:
		// The v9 header's count is the number of records, yet exporters
		// disagree on whether templates count (softflowd leaves them
		// out) and goflow2 stops after count sets: read every set, as
		// nfcapd does.
		binary.BigEndian.PutUint16(e.buf.Bytes()[2:], 0xffff)
		e.nf9 = netflow.NFv9Packet{}
		err := netflow.DecodeMessageVersion(&e.buf, e.tmpl, &e.nf9, &e.ipfix)
		p := &e.nf9
		d.gap(e, 9, p.SourceId, p.SequenceNumber, 1)
		h := header{version: 9, domain: p.SourceId, uptimeMs: p.SystemUptime, exportSecs: p.UnixSeconds}
		out, _, _ = d.fromSets(e, &h, p.FlowSets, out)
		return out, notTemplateMiss(err)
	case 10:
		e.ipfix = netflow.IPFIXPacket{}
		err := netflow.DecodeMessageVersion(&e.buf, e.tmpl, &e.nf9, &e.ipfix)
		p := &e.ipfix
		h := header{version: 10, domain: p.ObservationDomainId, exportSecs: p.ExportTime}
		var n, misses int
		out, n, misses = d.fromSets(e, &h, p.FlowSets, out)
		// IPFIX sequence numbers count the data records sent before this
		// message. When a set could not be decoded its record count is
		// unknown: the next message starts a new expectation.
		d.gap(e, 10, p.ObservationDomainId, p.SequenceNumber, uint32(n))
		if misses > 0 || err != nil {
			delete(e.next, uint64(10)<<32|uint64(p.ObservationDomainId))
		}
		return out, notTemplateMiss(err)
	}
	return out, errVersion
}

// Decode errors of the datagram path.
var (
	errShort   = errors.New("flowinput: datagram too short")
	errVersion = errors.New("flowinput: unknown version")
)

// notTemplateMiss drops template misses from err: they are counted
// apart and are not decode errors. err is returned whole when any part
// of it is something else.
func notTemplateMiss(err error) error {
	if err == nil || onlyTemplateMisses(err) {
		return nil
	}
	return err
}

// onlyTemplateMisses reports whether every error err joins is a
// template miss. goflow2 joins one miss per flowset onto the previous
// join, so the joins nest: each member is checked the same way. A join
// is looked at before errors.Is, which would match a join holding any
// one miss.
func onlyTemplateMisses(err error) bool {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			if !onlyTemplateMisses(e) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, netflow.ErrorTemplateNotFound)
}

// maxSeqGap bounds what one message can add to the sequence gaps: a
// larger jump forwards, or any jump backwards, is an exporter restart
// (or a corrupt number), counted as a reset.
const maxSeqGap = 1 << 16

// gap counts missing sequence numbers: seq is this message's number,
// inc how far it advances the next expected one.
func (d *Decoder) gap(e *exporter, version uint16, domain uint32, seq, inc uint32) {
	k := uint64(version)<<32 | uint64(domain)
	if want, ok := e.next[k]; ok && seq != want {
		if diff := seq - want; diff <= maxSeqGap {
			e.c.addGap(uint64(diff))
		} else {
			e.c.addReset()
		}
	}
	e.next[k] = seq + inc
}
