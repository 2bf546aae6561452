package main

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"math/rand/v2"
	"strings"
)

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
)

// pkt is what the script says the next packet of a flow is.
type pkt struct {
	dir   int // 0 client to server, 1 server to client
	flags uint8
	size  int   // payload bytes
	gap   int64 // mean gap to the flow's following packet, ns
}

// packet emits the flow's next packet and advances its script and clock.
func (g *generator) packet(f *flowState) error {
	p := g.script(f)
	frame := g.build(f, &p)
	if err := g.emit(f.t, frame); err != nil {
		return err
	}
	f.Packets[p.dir]++
	f.Bytes[p.dir] += uint64(len(frame))
	f.Last = f.t
	if f.digest != nil {
		digestPacket(f.digest, f.t, frame)
	}
	g.stats.Packets++
	g.stats.Bytes += uint64(len(frame))
	if g.stats.First == 0 {
		g.stats.First = f.t
	}
	g.stats.Last = f.t
	f.t += g.expGap(p.gap)
	return nil
}

// script decides the flow's next packet and moves the flow's state past
// it; after the flow's last packet the phase is phDone.
func (g *generator) script(f *flowState) pkt {
	half := f.rtt / 2
	switch f.phase {
	case phSYN:
		f.phase = phSYNACK
		return pkt{dir: 0, flags: tcpSYN, gap: half}
	case phSYNACK:
		f.phase = phACK
		return pkt{dir: 1, flags: tcpSYN | tcpACK, gap: half}
	case phACK:
		f.phase = phData
		return pkt{dir: 0, flags: tcpACK, gap: f.burst}
	case phData:
		p := g.dataPacket(f)
		if f.rounds == 0 {
			f.phase = phFIN1
			if f.Proto == 17 {
				f.phase = phDone
			}
		}
		return p
	case phFIN1:
		if f.rstFrom >= 0 {
			f.phase = phDone
			return pkt{dir: f.rstFrom, flags: tcpRST | tcpACK}
		}
		f.phase = phFIN2
		return pkt{dir: 0, flags: tcpFIN | tcpACK, gap: half}
	case phFIN2:
		f.phase = phLastACK
		return pkt{dir: 1, flags: tcpFIN | tcpACK, gap: half}
	default: // phLastACK
		f.phase = phDone
		return pkt{dir: 0, flags: tcpACK}
	}
}

// dataPacket is the next packet of a request/response round: the
// request, then the bulk packets (full-sized but the last), with the
// receiver's ACK after every second bulk packet (TCP).
func (g *generator) dataPacket(f *flowState) pkt {
	bulk := f.bulkDir()
	var p pkt
	switch {
	case f.ackDue:
		f.ackDue, f.sinceAck = false, 0
		p = pkt{dir: 1 - bulk, flags: tcpACK, gap: f.burst}
	case !f.reqSent:
		f.reqSent = true
		p = pkt{dir: 1 - bulk, flags: tcpACK | tcpPSH, size: g.requestSize(f), gap: f.rtt / 2}
	default:
		f.bulkLeft--
		p = pkt{dir: bulk, flags: tcpACK, size: g.bulkSize(f, f.bulkLeft == 0), gap: f.burst}
		if f.bulkLeft == 0 {
			p.flags |= tcpPSH
		}
		f.sinceAck++
		if f.Proto == 6 && f.sinceAck >= 2 {
			f.ackDue = true
		}
	}
	if f.reqSent && f.bulkLeft == 0 && !f.ackDue {
		f.rounds--
		if f.rounds > 0 {
			f.reqSent, f.bulkLeft, f.sinceAck = false, f.perRound, 0
			p.gap = f.rtt / 2
		}
	}
	return p
}

// requestSize draws a request's payload size.
func (g *generator) requestSize(f *flowState) int {
	r := g.rng
	switch {
	case f.Proto == 17 && f.Text: // DNS query
		return 28 + r.IntN(40)
	case f.Proto == 17: // QUIC-like, padded initial
		return 1200 + r.IntN(150)
	case f.Text: // HTTP request
		return 80 + r.IntN(700)
	default: // TLS record
		return 40 + r.IntN(560)
	}
}

// bulkSize draws a bulk packet's payload size: the segment size, less
// for the last packet of a round.
func (g *generator) bulkSize(f *flowState, last bool) int {
	r := g.rng
	switch {
	case f.Proto == 17 && f.Text: // DNS answer
		return 40 + r.IntN(460)
	case f.Proto == 17:
		if last {
			return 30 + r.IntN(1320)
		}
		return 1200 + r.IntN(150)
	}
	mss := 1460
	if f.IPv6 {
		mss = 1440
	}
	if last {
		return 1 + r.IntN(mss)
	}
	return mss
}

// Frame layout constants.
const (
	ethLen   = 14
	ipv4Len  = 20
	ipv6Len  = 40
	tcpLen   = 20
	udpLen   = 8
	synOpts  = 8 // MSS, NOP, NOP, SACK permitted
	snapLen  = 65535
	linkEth  = 1
	ttlHost  = 64
	ttlFar   = 52
	tcpWin   = 64240
	protoTCP = 6
)

var routerMAC = [6]byte{0x00, 0x1b, 0x21, 0x3a, 0x4c, 0x5e}

// build writes the frame of p into g.frame: Ethernet, IPv4 or IPv6, TCP
// or UDP with valid checksums, and the payload.
func (g *generator) build(f *flowState, p *pkt) []byte {
	src, dst := &f.Client, &f.Server
	sport, dport := f.CPort, f.SPort
	if p.dir == 1 {
		src, dst = dst, src
		sport, dport = dport, sport
	}
	l4 := udpLen
	if f.Proto == protoTCP {
		l4 = tcpLen
		if p.flags&tcpSYN != 0 {
			l4 += synOpts
		}
	}
	ipl := ipv4Len
	if f.IPv6 {
		ipl = ipv6Len
	}
	n := ethLen + ipl + l4 + p.size
	b := g.frame[:n]
	g.ethernet(b, f, p.dir)
	seg := b[ethLen+ipl:]
	g.payload(seg[l4:], f.Text)
	if f.Proto == protoTCP {
		g.tcp(seg[:l4], f, p, sport, dport)
	} else {
		binary.BigEndian.PutUint16(seg[0:], sport)
		binary.BigEndian.PutUint16(seg[2:], dport)
		binary.BigEndian.PutUint16(seg[4:], uint16(len(seg)))
		seg[6], seg[7] = 0, 0
	}
	var sum uint64
	if f.IPv6 {
		ipv6Header(b[ethLen:], src, dst, f.Proto, len(seg), p.dir)
		sum = checksum(checksum(0, src[:]), dst[:])
	} else {
		ipv4Header(b[ethLen:], src, dst, f.Proto, len(seg), f.ipID[p.dir], p.dir)
		f.ipID[p.dir]++
		sum = checksum(checksum(0, src[:4]), dst[:4])
	}
	sum += uint64(f.Proto) + uint64(len(seg))
	c := fold(checksum(sum, seg))
	if f.Proto == protoTCP {
		binary.BigEndian.PutUint16(seg[16:], c)
	} else {
		if c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(seg[6:], c)
	}
	return b
}

// ethernet writes the Ethernet header: hosts' MACs derive from the
// client address; the far side is the router.
func (g *generator) ethernet(b []byte, f *flowState, dir int) {
	host := [6]byte{0x02, 0x00, f.Client[12], f.Client[13], f.Client[14], f.Client[15]}
	if !f.IPv6 {
		copy(host[2:], f.Client[:4])
	}
	if dir == 0 {
		copy(b[0:6], routerMAC[:])
		copy(b[6:12], host[:])
	} else {
		copy(b[0:6], host[:])
		copy(b[6:12], routerMAC[:])
	}
	if f.IPv6 {
		b[12], b[13] = 0x86, 0xdd
	} else {
		b[12], b[13] = 0x08, 0x00
	}
}

// tcp writes the TCP header (checksum zero) and advances the sequence
// number of the sender.
func (g *generator) tcp(h []byte, f *flowState, p *pkt, sport, dport uint16) {
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint32(h[4:], f.seq[p.dir])
	ack := uint32(0)
	if p.flags&tcpACK != 0 {
		ack = f.seq[1-p.dir]
	}
	binary.BigEndian.PutUint32(h[8:], ack)
	h[12] = byte(len(h)/4) << 4
	h[13] = p.flags
	binary.BigEndian.PutUint16(h[14:], tcpWin)
	h[16], h[17], h[18], h[19] = 0, 0, 0, 0
	if p.flags&tcpSYN != 0 {
		mss := uint16(1460)
		if f.IPv6 {
			mss = 1440
		}
		copy(h[20:], []byte{2, 4, byte(mss >> 8), byte(mss), 1, 1, 4, 2})
	}
	f.seq[p.dir] += uint32(p.size)
	if p.flags&(tcpSYN|tcpFIN) != 0 {
		f.seq[p.dir]++
	}
}

func ipv4Header(h []byte, src, dst *[16]byte, proto uint8, l4 int, id uint16, dir int) {
	h[0], h[1] = 0x45, 0
	binary.BigEndian.PutUint16(h[2:], uint16(ipv4Len+l4))
	binary.BigEndian.PutUint16(h[4:], id)
	h[6], h[7] = 0x40, 0 // DF
	h[8] = ttlHost
	if dir == 1 {
		h[8] = ttlFar
	}
	h[9] = proto
	h[10], h[11] = 0, 0
	copy(h[12:16], src[:4])
	copy(h[16:20], dst[:4])
	binary.BigEndian.PutUint16(h[10:], fold(checksum(0, h[:ipv4Len])))
}

func ipv6Header(h []byte, src, dst *[16]byte, proto uint8, l4 int, dir int) {
	binary.BigEndian.PutUint32(h[0:], 6<<28)
	binary.BigEndian.PutUint16(h[4:], uint16(l4))
	h[6] = proto
	h[7] = ttlHost
	if dir == 1 {
		h[7] = ttlFar
	}
	copy(h[8:24], src[:])
	copy(h[24:40], dst[:])
}

// checksum adds b to a ones' complement sum kept in 64 bits (big-endian
// 32-bit words; fold reduces it). b starts at an even offset.
func checksum(sum uint64, b []byte) uint64 {
	for len(b) >= 8 {
		sum += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	return sum
}

// fold returns the Internet checksum of a sum from checksum.
func fold(sum uint64) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// payload fills b with random bytes or with text from the corpus.
func (g *generator) payload(b []byte, text bool) {
	if text {
		off := g.rng.IntN(len(g.text) - 2048)
		for n := 0; n < len(b); {
			n += copy(b[n:], g.text[off:])
			off = 0
		}
		return
	}
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, g.rng.Uint64())
		b = b[8:]
	}
	v := g.rng.Uint64()
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
}

// textCorpus builds 256 KiB of HTTP-like text (headers and words) the
// text payloads are cut from.
func textCorpus(r *rand.Rand) []byte {
	words := strings.Fields(`the of and to in is that for it as was with be by on not he this are or his from at which
		but have an they you were her she there one all we their can has been if more when will would who so no
		GET POST HTTP/1.1 200 OK Host: User-Agent: Mozilla/5.0 Accept: text/html application/json Content-Type:
		Content-Length: Cache-Control: max-age=3600 Connection: keep-alive Set-Cookie: session= Date: Server: nginx
		<html> <head> <title> </title> <body> <div class="content"> <p> </p> </div> <a href="/index.html"> </a>
		{"id": "name": "value": true, false, null, [1, 2, 3], "items": "status": "ok"} MAIL FROM: RCPT TO: DATA QUIT`)
	var sb strings.Builder
	for sb.Len() < 256<<10 {
		sb.WriteString(words[r.IntN(len(words))])
		if r.IntN(12) == 0 {
			sb.WriteString("\r\n")
		} else {
			sb.WriteByte(' ')
		}
	}
	return []byte(sb.String())
}

// newDigest returns the hash of a flow's packets.
func newDigest() hash.Hash { return sha256.New() }

// digestPacket adds one packet to a flow digest: its time (Unix ns, 8
// bytes big-endian), its length (4 bytes) and its bytes.
func digestPacket(h hash.Hash, ts int64, frame []byte) {
	var hdr [12]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(ts))
	binary.BigEndian.PutUint32(hdr[8:], uint32(len(frame)))
	h.Write(hdr[:])
	h.Write(frame)
}
