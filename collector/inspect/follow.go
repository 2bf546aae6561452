package inspect

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Chunk is one piece of a followed conversation: the new bytes of one
// packet, in one direction. Missing marks a gap the other side
// acknowledged but the capture lacks (Data then holds Wireshark's
// "[N bytes missing in capture file]" text, its NUL included).
type Chunk struct {
	Server  bool
	Missing bool
	Data    []byte
}

// Stream is a conversation reassembled both ways. Client is the source
// of its first packet, as Wireshark's Follow Stream has it (Node 0).
type Stream struct {
	Client, Server netip.AddrPort
	Chunks         []Chunk
	// ClientBytes and ServerBytes count the payload bytes of the chunks
	// each side sent (gap markers left out).
	ClientBytes, ServerBytes int64
}

// Follower rebuilds a conversation from its packets in capture order,
// the way Wireshark's Follow TCP Stream does (epan's
// follow_tcp_tap_listener): retransmitted and overlapping bytes are kept
// once, out-of-order segments wait until the bytes before them arrive,
// and a gap that the receiver acknowledged is marked as missing. UDP
// datagrams are kept whole, in order. Follower is not safe for
// concurrent use.
type Follower struct {
	s       Stream
	started bool
	proto   uint8
	dir     [2]direction
}

// direction is one side's reassembly state; index 0 is the client.
type direction struct {
	seq     uint32 // next expected sequence number
	started bool   // seq is set (by the side's first packet)
	written int64
	pending []pending // out-of-order segments, in arrival order
}

// pending is a segment that arrived ahead of the bytes before it.
type pending struct {
	seq  uint32
	data []byte
}

// seqLT and seqGT compare sequence numbers modulo 2^32.
func seqLT(a, b uint32) bool { return int32(a-b) < 0 }
func seqGT(a, b uint32) bool { return int32(a-b) > 0 }

// Add feeds the next packet of the conversation. Packets of another
// protocol than the first one are ignored. The segment's payload is
// copied.
func (f *Follower) Add(seg Segment) {
	if !f.started {
		f.started, f.proto = true, seg.Proto
		f.s.Client, f.s.Server = seg.Src, seg.Dst
	}
	if seg.Proto != f.proto {
		return
	}
	server := seg.Src != f.s.Client
	if f.proto == protoUDP {
		if len(seg.Payload) > 0 {
			f.emit(server, false, seg.Payload)
		}
		return
	}
	f.addTCP(seg, server)
}

// addTCP is Wireshark's follow_tcp_tap_listener.
func (f *Follower) addTCP(seg Segment, server bool) {
	d, o := f.side(server), f.side(!server)
	seq, length, data := seg.Seq, seg.SegLen, seg.Payload
	if seg.Flags&flagSYN != 0 {
		seq++
	}
	// A packet acknowledging bytes the other side's capture lacks lets
	// the other side's waiting segments go, after a gap marker.
	for len(o.pending) > 0 && f.drain(!server, seg.Ack, true) {
	}
	if d.written == 0 && !d.started {
		d.seq, d.started = seq, true
	}
	if seqLT(seq, d.seq) {
		// Dated, unless a retransmission carries more than was seen.
		next := seq + length
		if seqGT(next, d.seq) {
			off := d.seq - seq
			if uint32(len(data)) <= off {
				data = nil
			} else {
				data = data[off:]
			}
			seq, length = d.seq, next-d.seq
		}
	}
	if len(data) == 0 || seqLT(seq, d.seq) {
		return
	}
	if seq == d.seq {
		d.seq += length
		d.written += int64(len(data))
		f.emit(server, false, data)
		for f.drain(server, 0, false) {
		}
		return
	}
	d.pending = append(d.pending, pending{seq: seq, data: append([]byte(nil), data...)})
}

// drain is Wireshark's check_follow_fragments: it moves the first
// waiting segment of one side that now fits (or overlaps) the stream
// into it and reports true; with useAck, when none fits but ack passes
// the lowest waiting one, it emits a gap marker up to it.
func (f *Follower) drain(server bool, ack uint32, useAck bool) bool {
	d := f.side(server)
	if len(d.pending) == 0 {
		return false
	}
	lowest := d.pending[0].seq
	for i, p := range d.pending {
		if seqGT(lowest, p.seq) {
			lowest = p.seq
		}
		if seqLT(p.seq, d.seq) {
			if end := p.seq + uint32(len(p.data)); seqGT(end, d.seq) {
				newPos := d.seq - p.seq
				if uint32(len(p.data)) > newPos {
					f.emit(server, false, p.data[newPos:])
				}
				d.seq += uint32(len(p.data)) - newPos
			}
			d.pending = append(d.pending[:i], d.pending[i+1:]...)
			return true
		}
		if p.seq == d.seq {
			if len(p.data) > 0 {
				f.emit(server, false, p.data)
			}
			d.seq += uint32(len(p.data))
			d.pending = append(d.pending[:i], d.pending[i+1:]...)
			return true
		}
	}
	if useAck && seqGT(ack, lowest) {
		msg := "[" + strconv.Itoa(int(int32(lowest-d.seq))) + " bytes missing in capture file]\x00"
		f.emit(server, true, []byte(msg))
		d.seq = lowest
		return true
	}
	return false
}

// side returns the client's (false) or the server's (true) state.
func (f *Follower) side(server bool) *direction {
	if server {
		return &f.dir[1]
	}
	return &f.dir[0]
}

// emit appends a chunk (a copy of data).
func (f *Follower) emit(server, missing bool, data []byte) {
	f.s.Chunks = append(f.s.Chunks, Chunk{Server: server, Missing: missing, Data: append([]byte(nil), data...)})
	if missing {
		return
	}
	if server {
		f.s.ServerBytes += int64(len(data))
	} else {
		f.s.ClientBytes += int64(len(data))
	}
}

// Stream returns the conversation so far. It shares the chunks with the
// Follower.
func (f *Follower) Stream() *Stream { return &f.s }

// ASCII renders the stream as the body of tshark's
// `-q -z follow,tcp,ascii,A,B` (or follow,udp): per chunk its length on
// a line (indented by a tab for the server side), then its bytes with
// every byte but CR, LF and printable ASCII shown as '.', and a newline.
// The header (Follow, Filter, Node lines) and the closing separator line
// are not part of the body.
func (s *Stream) ASCII() string {
	var b strings.Builder
	for _, c := range s.Chunks {
		if c.Server {
			b.WriteByte('\t')
		}
		b.WriteString(strconv.Itoa(len(c.Data)))
		b.WriteByte('\n')
		for _, x := range c.Data {
			switch {
			case x == '\r' || x == '\n' || (x >= 0x20 && x < 0x7f):
				b.WriteByte(x)
			default:
				b.WriteByte('.')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Node renders an endpoint as tshark's Node lines do: ip:port, IPv6 in
// brackets.
func Node(a netip.AddrPort) string {
	if a.Addr().Is6() && !a.Addr().Is4In6() {
		return fmt.Sprintf("[%s]:%d", a.Addr(), a.Port())
	}
	return fmt.Sprintf("%s:%d", a.Addr(), a.Port())
}
