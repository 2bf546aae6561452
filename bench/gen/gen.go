package main

import (
	"errors"
	"fmt"
	"hash"
	"math"
	"math/rand/v2"
	"time"
)

// Config says what trace to generate. The same Config (seed included)
// always gives the same bytes.
type Config struct {
	// Flows is the number of flows in the trace.
	Flows int
	// Open is the number of flows open at once in the steady state: the
	// trace runs Open flow slots, each starting a new flow when its flow
	// ends, until Flows flows have started.
	Open int
	// Seed seeds every random choice.
	Seed uint64
	// Start is the time of the trace's beginning.
	Start time.Time
	// IPv6, UDP, Text, RST, Upload and Long are shares of flows (0..1):
	// IPv6 flows (else IPv4), UDP flows (else TCP), flows with text
	// payloads (else random bytes, as TLS looks), TCP flows that end with
	// a reset (else FIN/ACK both ways), TCP flows whose client sends the
	// bulk, and long flows (thousands of packets over seconds).
	IPv6, UDP, Text, RST, Upload, Long float64
	// Alpha is the Pareto shape of the bulk size in packets (smaller:
	// heavier tail); MaxBulk caps it.
	Alpha   float64
	MaxBulk int
	// Ramp spreads the start of the first Open flows.
	Ramp time.Duration
}

// DefaultConfig is the busy-tap trace: 200,000 flows, 75,000 open at
// once, about 2 M packets.
func DefaultConfig() Config {
	return Config{
		Flows:   200_000,
		Open:    75_000,
		Seed:    1,
		Start:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		IPv6:    0.3,
		UDP:     0.25,
		Text:    0.4,
		RST:     0.05,
		Upload:  0.1,
		Long:    0.0001,
		Alpha:   1.5,
		MaxBulk: 20_000,
		Ramp:    2 * time.Second,
	}
}

// errConfig wraps every configuration error.
var errConfig = errors.New("invalid generator config")

// Validate checks the configuration.
func (c *Config) Validate() error {
	share := func(name string, v float64) error {
		if v < 0 || v > 1 || math.IsNaN(v) {
			return fmt.Errorf("%w: %s %v not in [0, 1]", errConfig, name, v)
		}
		return nil
	}
	switch {
	case c.Flows < 1 || c.Flows > 1<<24:
		return fmt.Errorf("%w: flows %d not in [1, %d]", errConfig, c.Flows, 1<<24)
	case c.Open < 1:
		return fmt.Errorf("%w: open %d < 1", errConfig, c.Open)
	case c.Alpha <= 1:
		return fmt.Errorf("%w: alpha %v <= 1", errConfig, c.Alpha)
	case c.MaxBulk < 1:
		return fmt.Errorf("%w: max bulk %d < 1", errConfig, c.MaxBulk)
	case c.Ramp < 0:
		return fmt.Errorf("%w: ramp %v < 0", errConfig, c.Ramp)
	}
	for _, s := range []struct {
		n string
		v float64
	}{{"ipv6", c.IPv6}, {"udp", c.UDP}, {"text", c.Text}, {"rst", c.RST}, {"upload", c.Upload}, {"long", c.Long}} {
		if err := share(s.n, s.v); err != nil {
			return err
		}
	}
	return nil
}

// Flow is one generated flow as the manifest lists it.
type Flow struct {
	ID             int
	Proto          uint8 // 6 TCP, 17 UDP
	IPv6           bool
	Client, Server [16]byte // IPv4 in the first 4 bytes
	CPort, SPort   uint16
	Text           bool   // text payloads (else random)
	End            string // "fin", "rst" or "udp"
	Long           bool
	Packets        [2]int    // client->server, server->client
	Bytes          [2]uint64 // frame bytes per direction
	First, Last    int64     // Unix ns
	Digest         []byte    // SHA-256 of the flow's packets (see digestPacket), with a manifest
}

// Stats summarizes a generated trace.
type Stats struct {
	Flows, Packets int
	Bytes          uint64
	MaxOpen        int
	First, Last    int64
	TCP, UDP, IPv6 int
	Text, Long     int
	MaxFlowPackets int
}

// Packet phases of a flow's script.
const (
	phSYN = iota
	phSYNACK
	phACK
	phData // request/response rounds
	phFIN1
	phFIN2
	phLastACK
	phDone
)

// flowState is an open flow in a slot.
type flowState struct {
	Flow
	phase      int
	rounds     int  // request/response rounds left, the current one included
	perRound   int  // bulk packets per round
	bulkLeft   int  // bulk packets left in this round
	reqSent    bool // this round's request sent
	sinceAck   int  // bulk packets since the receiver's last ACK
	ackDue     bool // the receiver ACKs next
	upload     bool // the client sends the bulk
	seq        [2]uint32
	ipID       [2]uint16
	rtt, burst int64 // mean gaps, ns
	t          int64 // time of the next packet
	rstFrom    int   // direction that sends the RST; -1 for FIN
	digest     hash.Hash
}

// generator runs Config.Open slots of flows and emits their packets in
// time order.
type generator struct {
	cfg    Config
	rng    *rand.Rand
	slots  []flowState
	heap   []int32 // slot numbers, ordered by their flow's next packet time
	next   int     // next flow number to start
	open   int
	text   []byte
	frame  []byte
	emit   func(ts int64, frame []byte) error
	done   func(f *Flow)
	digest bool
	stats  Stats
}

// Generate produces the trace described by cfg: emit receives each frame
// in time order (the slice is reused), done each flow once it ended (with
// its digest when withDigest).
func Generate(cfg Config, withDigest bool, emit func(ts int64, frame []byte) error, done func(f *Flow)) (Stats, error) {
	if err := cfg.Validate(); err != nil {
		return Stats{}, err
	}
	g := &generator{
		cfg:    cfg,
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x7a91e5c0ffee)),
		slots:  make([]flowState, min(cfg.Open, cfg.Flows)),
		frame:  make([]byte, 0, 2048),
		emit:   emit,
		done:   done,
		digest: withDigest,
	}
	g.text = textCorpus(g.rng)
	start := cfg.Start.UnixNano() / 1000 * 1000
	for s := range g.slots {
		t := start + g.rng.Int64N(int64(cfg.Ramp)/1000+1)*1000
		g.startFlow(int32(s), t)
	}
	for len(g.heap) > 0 {
		if err := g.step(); err != nil {
			return g.stats, err
		}
	}
	return g.stats, nil
}

// step emits the next packet of the flow whose packet is due first.
func (g *generator) step() error {
	s := g.heap[0]
	f := &g.slots[s]
	if err := g.packet(f); err != nil {
		return err
	}
	if f.phase != phDone {
		g.siftDown(0)
		return nil
	}
	g.finish(f)
	if g.next < g.cfg.Flows {
		g.popHeap()
		g.startFlow(s, f.t+g.expGap(int64(5*time.Millisecond)))
		return nil
	}
	g.popHeap()
	return nil
}

// finish accounts a flow that sent its last packet.
func (g *generator) finish(f *flowState) {
	g.open--
	if g.digest {
		f.Digest = f.digest.Sum(nil)
	}
	n := f.Packets[0] + f.Packets[1]
	g.stats.MaxFlowPackets = max(g.stats.MaxFlowPackets, n)
	if g.done != nil {
		g.done(&f.Flow)
	}
}

// startFlow draws flow number g.next into slot s, first packet at t.
func (g *generator) startFlow(s int32, t int64) {
	id := g.next
	g.next++
	r := g.rng
	f := &g.slots[s]
	*f = flowState{Flow: Flow{ID: id, First: t}, t: t, rstFrom: -1}
	f.IPv6 = r.Float64() < g.cfg.IPv6
	f.Proto = 6
	if r.Float64() < g.cfg.UDP {
		f.Proto = 17
	}
	f.Text = r.Float64() < g.cfg.Text
	f.Long = r.Float64() < g.cfg.Long
	g.addresses(f)
	g.shape(f)
	f.seq = [2]uint32{r.Uint32(), r.Uint32()}
	f.ipID = [2]uint16{uint16(r.Uint32()), uint16(r.Uint32())}
	if g.digest {
		f.digest = newDigest()
	}
	g.open++
	g.stats.Flows++
	g.stats.MaxOpen = max(g.stats.MaxOpen, g.open)
	if f.Proto == 6 {
		g.stats.TCP++
	} else {
		g.stats.UDP++
	}
	if f.IPv6 {
		g.stats.IPv6++
	}
	if f.Text {
		g.stats.Text++
	}
	if f.Long {
		g.stats.Long++
	}
	g.pushHeap(s)
}

// permute spreads flow numbers over 24 bits (a bijection), so that
// addresses look scattered yet never repeat.
func permute(id int, seed uint64) uint32 {
	return (uint32(id)*0x9E3779B1 + uint32(seed)*0x85EBCA77) & (1<<24 - 1)
}

// addresses picks the flow's endpoints: a client address unique to the
// flow (10.0.0.0/8 or 2001:db8:c::/48), a server out of 4096 per family,
// and ports by service.
func (g *generator) addresses(f *flowState) {
	r := g.rng
	p := permute(f.ID, g.cfg.Seed)
	srv := r.Uint32N(4096)
	if f.IPv6 {
		copy(f.Client[:], []byte{0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0c})
		f.Client[13], f.Client[14], f.Client[15] = byte(p>>16), byte(p>>8), byte(p)
		copy(f.Server[:], []byte{0x20, 0x01, 0x0d, 0xb8, 0x00, 0x05})
		f.Server[14], f.Server[15] = byte(srv>>8), byte(srv)
	} else {
		f.Client[0], f.Client[1], f.Client[2], f.Client[3] = 10, byte(p>>16), byte(p>>8), byte(p)
		f.Server[0], f.Server[1], f.Server[2], f.Server[3] = 172, 16+byte(srv>>8), byte(srv), 10
	}
	f.CPort = uint16(32768 + r.IntN(28232))
	switch {
	case f.Proto == 17 && f.Text:
		f.SPort = 53
	case f.Proto == 17:
		f.SPort = [...]uint16{443, 443, 4500, 3478}[r.IntN(4)]
	case f.Text:
		f.SPort = [...]uint16{80, 80, 8080, 25, 21}[r.IntN(5)]
	default:
		f.SPort = [...]uint16{443, 443, 443, 22, 993}[r.IntN(5)]
	}
}

// pareto draws a Pareto(alpha, xm=1) size, capped.
func (g *generator) pareto(limit int) int {
	u := 1 - g.rng.Float64() // (0, 1]
	v := math.Pow(u, -1/g.cfg.Alpha)
	if v >= float64(limit) {
		return limit
	}
	return int(v)
}

// shape draws the flow's size (bulk packets and rounds) and pace.
func (g *generator) shape(f *flowState) {
	r := g.rng
	// Mean gap between round trips: log-uniform 5 ms .. 1 s; bulk
	// packets of a round come 20x faster.
	f.rtt = int64(math.Exp(math.Log(5e6) + r.Float64()*math.Log(200)))
	bulk := g.pareto(g.cfg.MaxBulk)
	if f.Proto == 17 && f.Text {
		bulk = 1 // DNS-like: one answer
	}
	f.rounds = 1 + bulk/(8+r.IntN(56))
	if f.Proto == 17 && f.Text {
		f.rounds = 1 + r.IntN(2)
	}
	if f.Long {
		bulk = 4000 + r.IntN(16000)
		f.rounds = 1 + bulk/(8+r.IntN(56))
		// Spread over 2..10 s whatever the size.
		dur := 2e9 + r.Int64N(8e9)
		f.burst = max(dur/int64(2*bulk), 2000)
		f.rtt = dur / int64(2*f.rounds)
	} else {
		f.burst = max(f.rtt/20, 2000)
		// Big flows go faster: no flow lasts much over 10 s.
		if d := int64(f.rounds)*f.rtt + int64(bulk)*f.burst; d > 10e9 {
			f.rtt = f.rtt * 10e9 / d
			f.burst = max(f.burst*10e9/d, 2000)
		}
	}
	f.perRound = max(1, bulk/f.rounds)
	if f.Proto == 6 {
		f.End = "fin"
		if r.Float64() < g.cfg.RST {
			f.End = "rst"
			f.rstFrom = r.IntN(2)
		}
		f.upload = r.Float64() < g.cfg.Upload
		f.phase = phSYN
	} else {
		f.End = "udp"
		f.phase = phData
	}
	f.bulkLeft = f.perRound
}

// bulkDir is the direction of bulk data: 1 (server to client) unless
// the flow uploads.
func (f *flowState) bulkDir() int {
	if f.upload {
		return 0
	}
	return 1
}

// expGap draws an exponential gap of the given mean in whole
// microseconds (the pcap's resolution), at least 1 µs and at most 10 s
// (so no flow idles out at the sensor).
func (g *generator) expGap(mean int64) int64 {
	d := int64(g.rng.ExpFloat64()*float64(mean)) / 1000 * 1000
	return min(max(d, 1000), int64(10*time.Second))
}

// --- heap of slots by next packet time (ties: lower slot first) ---

func (g *generator) less(a, b int32) bool {
	ta, tb := g.slots[a].t, g.slots[b].t
	return ta < tb || (ta == tb && a < b)
}

func (g *generator) pushHeap(s int32) {
	g.heap = append(g.heap, s)
	i := len(g.heap) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !g.less(g.heap[i], g.heap[p]) {
			break
		}
		g.heap[i], g.heap[p] = g.heap[p], g.heap[i]
		i = p
	}
}

func (g *generator) popHeap() {
	n := len(g.heap) - 1
	g.heap[0] = g.heap[n]
	g.heap = g.heap[:n]
	if n > 0 {
		g.siftDown(0)
	}
}

func (g *generator) siftDown(i int) {
	h := g.heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && g.less(h[r], h[l]) {
			m = r
		}
		if !g.less(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
