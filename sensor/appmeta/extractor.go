package appmeta

import (
	"github.com/tapir-sensor/tapir/flow"
)

// Protocols a flow can be recognised as.
const (
	protoUnknown uint8 = iota
	protoNone          // nothing recognised: the flow is done
	protoDNS
	protoTLS
	protoHTTP
	protoSSH
)

// parse results for one direction.
const (
	resMore uint8 = iota // the message continues: keep the bytes, wait for more
	resDone              // the direction gave what it had to give
	resFail              // malformed: give up on the direction
)

// stream is one direction of a flow.
type stream struct {
	buf     []byte // buffered first flight (TCP), from the Extractor's pool; nil when not buffering
	next    uint32 // next expected TCP sequence number
	pkts    uint8  // payload packets seen
	started bool
	done    bool
}

// Flow is the extraction state of one flow, made by Extractor.NewFlow
// when the flow's first payload packet arrives. It belongs to the
// Extractor's goroutine. It is kept small (80 bytes) because every open
// flow with payload has one: the metadata is allocated only once the
// protocol is recognised, a reassembly buffer only while a first message
// is incomplete, and sized to it.
type Flow struct {
	meta  *flow.AppMeta // nil until the protocol is recognised
	dir   [2]stream     // 0: from the initiator (client), 1: from the responder
	proto uint8
	tcp   bool
	done  bool
}

// Meta returns the metadata extracted so far, nil when none. The result
// is owned by the flow and may still change until Done.
func (f *Flow) Meta() *flow.AppMeta {
	if f == nil || f.meta == nil || f.meta.DNS == nil && f.meta.TLS == nil && f.meta.HTTP == nil && f.meta.SSH == nil {
		return nil
	}
	return f.meta
}

// Done reports whether the flow needs no more packets.
func (f *Flow) Done() bool { return f.done }

// DirDone reports whether one direction (the client's when fromClient)
// needs no more packets: Packet then returns false for that direction's
// packets without reading or counting them, so a caller may keep this
// answer beside its own per-flow state and not call Packet (nor touch
// the Flow, a cache miss per packet at a busy tap) for that direction.
func (f *Flow) DirDone(fromClient bool) bool {
	if fromClient {
		return f.done || f.dir[0].done
	}
	return f.done || f.dir[1].done
}

// Stats count what the Extractor did. Only the owning goroutine writes
// them; copy them from there.
type Stats struct {
	Flows       uint64 // per-flow states made (flows with payload)
	Completed   uint64 // flows whose metadata was complete before their packet budget ran out
	DNS         uint64 // flows recognised as DNS
	TLS         uint64 // ... TLS over TCP
	HTTP        uint64 // ... HTTP/1.x
	SSH         uint64 // ... SSH
	ParseErrors uint64 // directions given up because a message was malformed
	Gaps        uint64 // TCP directions given up at a sequence gap (reassembly is in order only)
	Overflows   uint64 // TCP directions whose first message exceeded max_bytes
	PacketLimit uint64 // directions that used their max_packets before completing
}

// Add adds o to s.
func (s *Stats) Add(o *Stats) {
	s.Flows += o.Flows
	s.Completed += o.Completed
	s.DNS += o.DNS
	s.TLS += o.TLS
	s.HTTP += o.HTTP
	s.SSH += o.SSH
	s.ParseErrors += o.ParseErrors
	s.Gaps += o.Gaps
	s.Overflows += o.Overflows
	s.PacketLimit += o.PacketLimit
}

// Extractor extracts the metadata of the flows of one sensor worker. It
// is not safe for concurrent use: one goroutine calls NewFlow, Packet and
// Release.
type Extractor struct {
	cfg     Config
	bufs    [][]byte // free reassembly buffers
	scratch []byte   // gathers a handshake message spread over records
	hello   ClientHello
	stats   Stats
}

// New returns an Extractor with cfg (validated).
func New(cfg Config) (*Extractor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Extractor{cfg: cfg}, nil
}

// Stats returns the counters.
func (x *Extractor) Stats() Stats { return x.stats }

// NewFlow returns the state of a new flow (tcp: TCP, else UDP).
func (x *Extractor) NewFlow(tcp bool) *Flow {
	x.stats.Flows++
	return &Flow{tcp: tcp}
}

// Release returns the flow's buffers to the pool. The flow's metadata
// stays readable; Packet must not be called on it again.
func (x *Extractor) Release(f *Flow) {
	for i := range f.dir {
		x.putBuf(&f.dir[i])
	}
	f.done = true
}

func (x *Extractor) putBuf(s *stream) {
	if s.buf != nil {
		if len(x.bufs) < 64 {
			x.bufs = append(x.bufs, s.buf[:0])
		}
		s.buf = nil
	}
}

// minBuf is the smallest reassembly buffer made: most first messages
// (requests, hellos) fit, and the buffer grows by append up to max_bytes.
const minBuf = 2 << 10

// getBuf returns an empty buffer for at least need bytes: a pooled one,
// else a new one of the size needed (not max_bytes: many flows may hold
// one at once).
func (x *Extractor) getBuf(need int) []byte {
	if n := len(x.bufs); n > 0 {
		b := x.bufs[n-1]
		x.bufs = x.bufs[:n-1]
		return b
	}
	return make([]byte, 0, min(max(2*need, minBuf), x.cfg.MaxBytes))
}

// Packet feeds one payload packet of f: fromClient says the sender is
// the flow's initiator, seq is the TCP sequence number of the payload's
// first byte (ignored for UDP), sport and dport the packet's ports. It
// reports whether the flow is done; the caller then calls Release and
// stops calling Packet. Packet does not retain payload.
func (x *Extractor) Packet(f *Flow, fromClient bool, seq uint32, payload []byte, sport, dport uint16) bool {
	if f.done {
		return true
	}
	d := 1
	if fromClient {
		d = 0
	}
	s := &f.dir[d]
	if s.done || len(payload) == 0 {
		return false
	}
	s.pkts++
	data := payload
	if f.tcp {
		var ok bool
		if data, ok = x.reassemble(s, seq, payload); !ok {
			return x.finishDir(f, s)
		}
		if len(data) == 0 {
			return false // retransmission
		}
	}
	if f.proto == protoUnknown {
		f.proto = x.detect(f, data, sport, dport)
		if f.proto == protoUnknown {
			return x.finishDir(f, s)
		}
		f.meta = new(flow.AppMeta)
	}
	res := x.parse(f, d, data)
	switch res {
	case resMore:
		if !f.tcp {
			break
		}
		if s.buf == nil {
			s.buf = append(x.getBuf(len(data)), data...)
		}
		if len(s.buf) >= x.cfg.MaxBytes {
			x.stats.Overflows++
			return x.finishDir(f, s)
		}
	case resFail:
		x.stats.ParseErrors++
		return x.finishDir(f, s)
	case resDone:
		return x.finishDir(f, s)
	}
	if int(s.pkts) >= x.cfg.MaxPackets {
		x.stats.PacketLimit++
		return x.finishDir(f, s)
	}
	return f.done
}

// finishDir ends a direction; the flow is done when both directions are,
// or when its protocol says it has everything.
func (x *Extractor) finishDir(f *Flow, s *stream) bool {
	s.done = true
	x.putBuf(s)
	if f.dir[0].done && f.dir[1].done || x.complete(f) {
		if x.complete(f) {
			x.stats.Completed++
		}
		f.done = true
	}
	return f.done
}

// complete reports whether the flow's metadata is all there.
func (x *Extractor) complete(f *Flow) bool {
	m := f.meta
	switch {
	case f.proto == protoNone:
		return true
	case m == nil:
		return false
	}
	switch f.proto {
	case protoDNS:
		return m.DNS != nil && m.DNS.HasResponse
	case protoTLS:
		return m.TLS != nil && m.TLS.JA4 != "" && m.TLS.Cipher != 0
	case protoHTTP:
		return m.HTTP != nil && m.HTTP.Method != "" && m.HTTP.StatusCode != 0
	case protoSSH:
		return m.SSH != nil && m.SSH.ClientVersion != "" && m.SSH.ServerVersion != ""
	}
	return false
}

// reassemble returns the contiguous bytes of the direction so far with
// payload added in order: payload itself when nothing is buffered. ok is
// false at a sequence gap or when the bytes would exceed max_bytes.
func (x *Extractor) reassemble(s *stream, seq uint32, payload []byte) ([]byte, bool) {
	if !s.started {
		s.started = true
		s.next = seq + uint32(len(payload))
		return payload, true
	}
	diff := int32(seq - s.next)
	if diff > 0 {
		x.stats.Gaps++
		return nil, false
	}
	if diff < 0 {
		if int(-diff) >= len(payload) {
			return nil, true // all seen before
		}
		payload = payload[-diff:]
	}
	s.next += uint32(len(payload))
	if s.buf == nil {
		// The earlier bytes were consumed (or not needed): only new
		// messages can start here.
		return payload, true
	}
	if len(s.buf)+len(payload) > x.cfg.MaxBytes {
		payload = payload[:x.cfg.MaxBytes-len(s.buf)]
	}
	s.buf = append(s.buf, payload...)
	return s.buf, true
}

func isDNSPort(p uint16) bool { return p == 53 || p == 5353 || p == 5355 }

// detect recognises the protocol from the first payload of a direction,
// by content first and ports second.
func (x *Extractor) detect(f *Flow, b []byte, sport, dport uint16) uint8 {
	switch {
	case f.tcp && len(b) >= 2 && b[0] == 22 && b[1] == 3:
		x.stats.TLS++
		return protoTLS
	case f.tcp && (isHTTPRequest(b) || len(b) >= 5 && isHTTPResponse(b)):
		x.stats.HTTP++
		return protoHTTP
	case f.tcp && len(b) >= 4 && string(b[:4]) == "SSH-":
		x.stats.SSH++
		return protoSSH
	case isDNSPort(sport) || isDNSPort(dport):
		x.stats.DNS++
		return protoDNS
	}
	return protoUnknown
}

// parse runs the flow's protocol parser on the bytes of direction d.
func (x *Extractor) parse(f *Flow, d int, b []byte) uint8 {
	m := f.meta
	switch f.proto {
	case protoDNS:
		return x.parseDNS(f, b)
	case protoTLS:
		typ, body, err := firstHandshake(b, &x.scratch)
		if err == errNeedMore {
			return resMore
		}
		if err != nil {
			return resFail
		}
		return x.hello2meta(m, typ, body, false)
	case protoHTTP:
		end := headEnd(b)
		if end < 0 && len(b) < x.cfg.MaxBytes {
			return resMore
		}
		if m.HTTP == nil {
			m.HTTP = new(flow.HTTPMeta)
		}
		var err error
		switch {
		case isHTTPResponse(b):
			if m.HTTP.StatusCode == 0 {
				err = ParseHTTPResponse(b, m.HTTP)
			}
		case isHTTPRequest(b):
			if m.HTTP.Method == "" {
				err = ParseHTTPRequest(b, m.HTTP)
			}
		default:
			err = ErrMalformed
		}
		if err != nil {
			return resFail
		}
		return resDone
	case protoSSH:
		id, err := ParseSSHIdent(b)
		if err == errNeedMore && len(b) < x.cfg.MaxBytes {
			return resMore
		}
		if err != nil {
			return resFail
		}
		if m.SSH == nil {
			m.SSH = new(flow.SSHMeta)
		}
		if d == 0 {
			m.SSH.ClientVersion = id
		} else {
			m.SSH.ServerVersion = id
		}
		return resDone
	}
	return resFail
}

// hello2meta fills the TLS metadata from a ClientHello or ServerHello.
func (x *Extractor) hello2meta(m *flow.AppMeta, typ uint8, body []byte, quic bool) uint8 {
	switch typ {
	case hsClientHello:
		h := &x.hello
		if ParseClientHello(body, h) != nil {
			return resFail
		}
		if m.TLS == nil {
			m.TLS = new(flow.TLSMeta)
		}
		t := m.TLS
		t.ServerName = clip(h.SNI)
		t.ALPN = t.ALPN[:0]
		for _, a := range h.ALPN {
			t.ALPN = append(t.ALPN, clip(a))
		}
		t.ClientVersion = h.MaxVersion()
		t.JA4 = h.JA4(quic)
		t.JA3 = h.JA3()
		t.QUIC = quic
		return resDone
	case hsServerHello:
		var s ServerHello
		if ParseServerHello(body, &s) != nil {
			return resFail
		}
		if m.TLS == nil {
			m.TLS = new(flow.TLSMeta)
		}
		m.TLS.ServerVersion = s.Version
		m.TLS.Cipher = s.Cipher
		m.TLS.NextProtocol = clip(s.ALPN)
		m.TLS.QUIC = m.TLS.QUIC || quic
		return resDone
	}
	return resFail
}

// parseDNS handles a UDP datagram or the TCP bytes of one direction.
func (x *Extractor) parseDNS(f *Flow, b []byte) uint8 {
	if f.tcp {
		if len(b) < 2 {
			return resMore
		}
		n := int(b[0])<<8 | int(b[1])
		if 2+n > len(b) {
			if 2+n > x.cfg.MaxBytes {
				return resFail
			}
			return resMore
		}
		b = b[2 : 2+n]
	}
	if f.meta.DNS == nil {
		f.meta.DNS = new(flow.DNSMeta)
	}
	m := f.meta.DNS
	if m.HasResponse {
		return resDone
	}
	if _, err := ParseDNS(b, m, x.cfg.MaxAnswers); err != nil {
		if !m.HasResponse && m.QueryName == "" && m.QueryType == 0 {
			f.meta.DNS = nil
		}
		return resFail
	}
	if f.tcp {
		return resDone
	}
	// UDP: the client's direction may carry retries; a response ends
	// the flow (complete), a query ends nothing.
	if m.HasResponse {
		return resDone
	}
	return resMore
}
