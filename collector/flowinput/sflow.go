package flowinput

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/sflow"

	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/flow"
)

// sFlow raw packet header protocols (sFlow v5 header_protocol).
const (
	sflowHeaderEthernet = 1
	sflowHeaderIPv4     = 11
	sflowHeaderIPv6     = 12
)

// decodeSFlow converts an sFlow v5 datagram: each flow sample becomes a
// one-packet flow record scaled by the sample's sampling rate, its tuple
// taken from the sampled packet header (decoded by the sensor's decoder)
// or from a sampled IPv4/IPv6 record. sFlow carries no flow timing: the
// record's start and end are the arrival time of the datagram.
func (d *Decoder) decodeSFlow(e *exporter, data []byte, now time.Time, out []flow.Record) ([]flow.Record, error) {
	if err := checkSFlow(data); err != nil {
		return out, err
	}
	e.buf.Reset()
	e.buf.Write(data)
	e.sf = sflow.Packet{}
	err := sflow.DecodeMessageVersion(&e.buf, &e.sf)
	p := &e.sf
	if p.Version == 5 && len(p.AgentIP) > 0 {
		d.gap(e, 5<<8, p.SubAgentId, p.SequenceNumber, 1)
	}
	now = now.UTC()
	for _, s := range p.Samples {
		var rate, in, outIf uint32
		var recs []sflow.FlowRecord
		switch fs := s.(type) {
		case sflow.FlowSample:
			rate, in, outIf, recs = fs.SamplingRate, fs.Input, fs.Output, fs.Records
		case sflow.ExpandedFlowSample:
			rate, in, outIf, recs = fs.SamplingRate, fs.InputIfValue, fs.OutputIfValue, fs.Records
		default:
			continue
		}
		var pkt decode.Packet
		var length uint64
		found := false
		for _, r := range recs {
			switch v := r.Data.(type) {
			case sflow.SampledHeader:
				link := decode.LinkEthernet
				switch v.Protocol {
				case sflowHeaderEthernet:
				case sflowHeaderIPv4, sflowHeaderIPv6:
					link = decode.LinkRaw
				default:
					continue
				}
				decode.Decode(link, v.HeaderData, &pkt)
				if pkt.HasTuple {
					found, length = true, uint64(v.FrameLength)
				}
			case sflow.SampledIPv4:
				if !found && len(v.SrcIP) == 4 && len(v.DstIP) == 4 {
					pkt = decode.Packet{HasTuple: true, TCPFlags: uint8(v.TcpFlags)}
					pkt.Tuple = flow.Tuple{Src: flow.AddrFrom4([4]byte(v.SrcIP)), Dst: flow.AddrFrom4([4]byte(v.DstIP)),
						SrcPort: uint16(v.SrcPort), DstPort: uint16(v.DstPort), Proto: uint8(v.Protocol), Family: flow.FamilyIPv4}
					found, length = true, uint64(v.Length)
				}
			case sflow.SampledIPv6:
				if !found && len(v.SrcIP) == 16 && len(v.DstIP) == 16 {
					pkt = decode.Packet{HasTuple: true, TCPFlags: uint8(v.TcpFlags)}
					pkt.Tuple = flow.Tuple{Src: flow.Addr(v.SrcIP), Dst: flow.Addr(v.DstIP),
						SrcPort: uint16(v.SrcPort), DstPort: uint16(v.DstPort), Proto: uint8(v.Protocol), Family: flow.FamilyIPv6}
					found, length = true, uint64(v.Length)
				}
			}
		}
		if !found {
			continue
		}
		x := &flow.Exported{Exporter: e.addr, Protocol: "sflow", ObservationDomain: p.SubAgentId,
			InputInterface: in, OutputInterface: outIf, SamplingRate: rate, RawSourcePackets: 1, RawSourceBytes: length}
		src := flow.DirStats{Packets: 1, Bytes: length, First: now, Last: now, TCPFlags: pkt.TCPFlags}
		out = append(out, d.finish(e, pkt.Tuple, src, flow.DirStats{}, now, now, flow.ReasonIdleTimeout, x))
	}
	return out, err
}

// errSFlowCount: a sample claims more records than goflow2 should allocate.
var errSFlowCount = errors.New("flowinput: sflow sample with too many records")

// checkSFlow refuses datagrams whose expanded flow samples claim more
// than 1000 records: goflow2 v2.2.6 guards the record count of every
// other sample type but allocates the expanded flow sample's count as
// sent (up to 2^32 records).
func checkSFlow(b []byte) error {
	const maxRecords = 1000
	if len(b) < 8 {
		return nil // goflow2 reports it
	}
	off := 8
	switch binary.BigEndian.Uint32(b[4:]) {
	case 1:
		off += 4
	case 2:
		off += 16
	default:
		return nil
	}
	off += 12 // sub-agent, sequence, uptime
	if len(b) < off+4 {
		return nil
	}
	n := int(binary.BigEndian.Uint32(b[off:]))
	off += 4
	for i := 0; i < n && off+8 <= len(b); i++ {
		format, length := binary.BigEndian.Uint32(b[off:]), int(binary.BigEndian.Uint32(b[off+4:]))
		off += 8
		if length < 0 || length > len(b)-off {
			return nil
		}
		if format == 3 && length >= 44 && binary.BigEndian.Uint32(b[off+40:]) > maxRecords {
			return errSFlowCount
		}
		off += length
	}
	return nil
}
