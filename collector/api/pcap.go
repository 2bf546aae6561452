package api

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/collector/query"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/pcapio"
	"github.com/tapir-sensor/tapir/storage"
)

// caps are the limits of one pcap answer.
type caps struct {
	packets, bytes int64
	flows          int
	truncate       bool
}

// errStop ends a scan early without error.
var errStop = errors.New("stop")

// blockSet accumulates the decoded blocks of an answer, without
// duplicates, up to the caps.
type blockSet struct {
	caps     caps
	seen     map[blockID]bool
	blocks   []*block.Block
	packets  int64
	bytes    int64
	full     bool // the packet or byte cap was passed: scanning stopped
	flowsCut bool // more flows matched than max_flows
	// lookupDur and scanDur time the store's flow lookup (or record scan;
	// for a tunnel's own flow also the record scan finding its inner
	// flows) and the block scans with their decoding; sent as
	// Server-Timing.
	lookupDur, scanDur time.Duration
	// firstKept is the earliest block of each wanted flow instance that
	// the scans met; expired lists the flow instances whose scan the store
	// answered ErrPacketsExpired (retention removed blocks of their flow
	// key in their window). Together they tell what an answer lacks.
	firstKept map[flow.ID]keptBlock
	expired   []expiredScan
	// win cuts the answer per packet to the request's from/to; outside
	// counts the blocks it left out whole.
	win     window
	outside int
	// filter, when set, keeps part of each block scanned (nil: none of
	// it): a tunnel's packets out of its inner flows' blocks.
	filter func(*block.Block) (*block.Block, error)
	// tunnel asks, for a tunnel's own flow, for every packet of the
	// tunnel even when frames are stored on its tuple (tunnel=1).
	tunnel bool
}

// window is a request's [from, to] in Unix ns, both ends inclusive; a
// zero end is unbounded.
type window struct{ from, to int64 }

// newWindow converts a request's bounds (zero times unbounded).
func newWindow(from, to time.Time) window {
	var w window
	if !from.IsZero() {
		w.from = from.UnixNano()
	}
	if !to.IsZero() {
		w.to = to.UnixNano()
	}
	return w
}

// contains reports whether a packet at ts (Unix ns) is inside.
func (w window) contains(ts int64) bool {
	return (w.from == 0 || ts >= w.from) && (w.to == 0 || ts <= w.to)
}

// covers reports whether every packet of a block spanning [first, last]
// is inside.
func (w window) covers(first, last int64) bool {
	return w.contains(first) && w.contains(last)
}

// countIn returns the packets and captured bytes of blk inside w.
func (w window) countIn(blk *block.Block) (packets, bytes int64) {
	if w.covers(blk.Meta.First, blk.Meta.Last) {
		return int64(blk.Meta.Packets), int64(blk.Meta.Bytes)
	}
	r := blk.Reader()
	for {
		ts, _, data, err := r.Next()
		if err != nil {
			// Decode checked every record: only io.EOF ends the loop.
			return packets, bytes
		}
		if w.contains(ts) {
			packets++
			bytes += int64(len(data))
		}
	}
}

// keptBlock is the earliest block kept of a flow instance.
type keptBlock struct {
	first int64 // its first packet (Unix ns)
	seq   uint32
}

// expiredScan is a flow instance whose window [from, to] overlaps blocks
// that retention removed; whole says the window starts at the
// instance's first packet.
type expiredScan struct {
	id       flow.ID
	from, to time.Time
	whole    bool
}

// PacketsExpired says what a pcap answer lacks because retention removed
// it: the number of flow instances missing packets, the number of blocks
// removed from them (0 when not known, as when the window starts after a
// flow's first packet or none of a flow's blocks is left), and the span
// [From, Until) that holds every missing packet. Retention removes a
// flow's blocks oldest first, so the missing packets of a flow instance
// are those before the first packet still kept.
type PacketsExpired struct {
	Flows  int       `json:"flows"`
	Blocks int64     `json:"blocks,omitempty"`
	From   time.Time `json:"from"`
	Until  time.Time `json:"until"`
}

// Header renders p as the X-Tapir-Packets-Expired header value:
// "flows=N; blocks=N; from=RFC3339Nano; until=RFC3339Nano" (blocks left
// out when unknown).
func (p PacketsExpired) Header() string {
	var b strings.Builder
	fmt.Fprintf(&b, "flows=%d", p.Flows)
	if p.Blocks > 0 {
		fmt.Fprintf(&b, "; blocks=%d", p.Blocks)
	}
	fmt.Fprintf(&b, "; from=%s; until=%s", p.From.UTC().Format(time.RFC3339Nano), p.Until.UTC().Format(time.RFC3339Nano))
	return b.String()
}

// packetsExpired sums what the scanned flow instances lack; nil when
// nothing is missing. A flow instance misses packets when the store said
// blocks overlapping its window were removed and its first kept block
// starts after the window's start (or none is kept).
func (bs *blockSet) packetsExpired() *PacketsExpired {
	var p *PacketsExpired
	known := true
	counted := map[flow.ID]bool{}
	for _, e := range bs.expired {
		if counted[e.id] {
			continue
		}
		from, until, blocks := e.from, e.to.Add(time.Nanosecond), int64(0)
		if k, ok := bs.firstKept[e.id]; ok {
			if k.first <= e.from.UnixNano() {
				continue // nothing of this instance is missing in its window
			}
			until = time.Unix(0, k.first).UTC()
			if e.whole {
				blocks = int64(k.seq) // blocks are numbered from 0 per flow instance
			}
		}
		counted[e.id] = true
		known = known && blocks > 0
		if p == nil {
			p = &PacketsExpired{From: from, Until: until}
		}
		p.Flows++
		p.Blocks += blocks
		if from.Before(p.From) {
			p.From = from
		}
		if until.After(p.Until) {
			p.Until = until
		}
	}
	if p != nil && !known {
		p.Blocks = 0
	}
	return p
}

// exceeded reports whether more packets exist than will be sent.
func (bs *blockSet) exceeded() bool { return bs.full || bs.flowsCut }

type blockID struct {
	sensor string
	flow   flow.ID
	key    flow.Key
	seq    uint32
}

// scan adds the blocks of key overlapping [from, to] whose flow ID is in
// want (any when want is empty). It returns ErrPacketsExpired as the store
// does, and stops early once a cap is passed.
func (bs *blockSet) scan(ctx context.Context, st storage.Reader, key flow.Key, from, to time.Time, want map[flow.ID]bool) error {
	if bs.full {
		return nil
	}
	t0 := time.Now()
	defer func() { bs.scanDur += time.Since(t0) }()
	err := st.ScanBlocks(ctx, key, from, to, func(b *storage.Block) error {
		m := &b.Meta
		if len(want) > 0 && !want[m.FlowID] {
			return nil
		}
		if k, ok := bs.firstKept[m.FlowID]; !ok || m.First < k.first {
			bs.firstKept[m.FlowID] = keptBlock{first: m.First, seq: m.Seq}
		}
		id := blockID{m.SensorID, m.FlowID, m.Key, m.Seq}
		if bs.seen[id] {
			return nil
		}
		bs.seen[id] = true
		blk, err := block.Decode(b.Encoded)
		if err != nil {
			return fmt.Errorf("decode block %d of flow %s from %s: %w", m.Seq, m.FlowID, m.SensorID, err)
		}
		if bs.filter != nil {
			if blk, err = bs.filter(blk); blk == nil {
				return err
			}
		}
		n, nb := bs.win.countIn(blk)
		if n == 0 {
			bs.outside++ // a block at the window's edge with no packet inside
			return nil
		}
		bs.blocks = append(bs.blocks, blk)
		bs.packets += n
		bs.bytes += nb
		if bs.packets > bs.caps.packets || bs.bytes > bs.caps.bytes {
			bs.full = true
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// parseCap reads an optional positive integer parameter that may only
// lower the server's cap.
func parseCap(v url.Values, name string, server int64) (int64, error) {
	s := v.Get(name)
	if s == "" {
		return server, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s must be a positive integer", name)
	}
	return min(n, server), nil
}

func (s *Server) handlePcap(c *call) {
	v := c.r.URL.Query()
	id, expr := v.Get("flow"), v.Get("query")
	c.audit.setParams(id, expr, s.cfg.Audit.MaxParamBytes)
	bad := func(msg string) { s.fail(c, http.StatusBadRequest, "bad_request", msg, nil) }
	if (id == "") == (expr == "") {
		bad("give exactly one of flow and query")
		return
	}
	fs := v.Get("format")
	if fs == "" {
		fs = string(pcapio.FormatPcap)
	}
	format, err := pcapio.ParseFormat(fs)
	if err != nil {
		bad("format must be pcap or pcapng")
		return
	}
	c.audit.Format = string(format)
	var cp caps
	if cp.packets, err = parseCap(v, "max_packets", s.cfg.MaxPackets); err != nil {
		bad(err.Error())
		return
	}
	if cp.bytes, err = parseCap(v, "max_bytes", s.cfg.MaxBytes); err != nil {
		bad(err.Error())
		return
	}
	mf, err := parseCap(v, "max_flows", int64(s.cfg.MaxFlows))
	if err != nil {
		bad(err.Error())
		return
	}
	cp.flows = int(mf)
	if t := v.Get("truncate"); t != "" {
		if cp.truncate, err = strconv.ParseBool(t); err != nil {
			bad("truncate must be a boolean")
			return
		}
	}
	bs := &blockSet{caps: cp, seen: map[blockID]bool{}, firstKept: map[flow.ID]keptBlock{}}
	if t := v.Get("tunnel"); t != "" {
		if bs.tunnel, err = strconv.ParseBool(t); err != nil {
			bad("tunnel must be a boolean")
			return
		}
	}
	var nflows int
	if id != "" {
		nflows, err = s.collectFlow(c, bs, id, v)
	} else {
		nflows, err = s.collectQuery(c, bs, expr)
	}
	if err != nil {
		s.storeError(c, err)
		return
	}
	c.audit.Flows = nflows
	if bs.exceeded() && !cp.truncate {
		s.fail(c, http.StatusRequestEntityTooLarge, "cap_exceeded",
			"answer exceeds the packet or byte cap; lower the window or repeat with truncate=1",
			map[string]any{"max_packets": cp.packets, "max_bytes": cp.bytes})
		return
	}
	s.streamPcap(c, bs, format, nflows)
}

// errAnswered marks an error already answered to the client.
var errAnswered = errors.New("answered")

// storeError answers an error from collecting blocks.
func (s *Server) storeError(c *call, err error) {
	switch {
	case errors.Is(err, errAnswered):
	case errors.Is(err, context.DeadlineExceeded):
		s.fail(c, http.StatusGatewayTimeout, "timeout", "request timed out", nil)
	case errors.Is(err, context.Canceled):
		s.fail(c, 499, "canceled", "client went away", nil)
	case errors.Is(err, storage.ErrCorrupt):
		// Never "not flushed" or a partial answer that says complete: the
		// packets are stored but damaged.
		s.log.Error("retrieval hit corrupt store data", "err", err, "flow", c.audit.Flow, "subject", c.audit.Subject)
		c.audit.Error = err.Error()
		s.fail(c, http.StatusInternalServerError, "corrupt",
			"the store's data for this request is corrupt (checksum mismatch); it cannot be served whole: "+err.Error(), nil)
	default:
		s.log.Error("pcap retrieval failed", "err", err, "subject", c.audit.Subject)
		c.audit.Error = err.Error()
		s.fail(c, http.StatusInternalServerError, "internal", "storage error", nil)
	}
}

func (s *Server) parseWindow(c *call, v url.Values) (from, to time.Time, err error) {
	now := s.deps.Now()
	if f := v.Get("from"); f != "" {
		if from, err = query.ParseTime(f, now); err != nil {
			return from, to, fmt.Errorf("from: %w", err)
		}
	}
	if t := v.Get("to"); t != "" {
		if to, err = query.ParseTime(t, now); err != nil {
			return from, to, fmt.Errorf("to: %w", err)
		}
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return from, to, errors.New("to is before from")
	}
	c.audit.From, c.audit.To = from, to
	return from, to, nil
}

// communityIDLen is the length of a Community ID v1: "1:" and the
// base64 of a SHA-1.
const communityIDLen = 2 + 28

// checkFlowParam checks the flow parameter's syntax: a Community ID v1
// ("1:" and the base64 of 20 bytes) or a 32-hex-digit flow ID. A '+'
// that a URL's query decoding turned into a space is put back (Community
// IDs hold no spaces). The error says what is wrong, for a 400 answer:
// only a well-formed ID can be unknown (404).
func checkFlowParam(id string) (string, error) {
	if !strings.HasPrefix(id, "1:") {
		if _, err := flow.ParseID(id); err != nil {
			return "", fmt.Errorf("flow %q is neither a Community ID (1:...) nor a flow ID (32 hex digits)", cut(id, 64))
		}
		return id, nil
	}
	id = strings.ReplaceAll(id, " ", "+")
	if len(id) != communityIDLen {
		return "", fmt.Errorf("malformed Community ID %q: %d characters, a Community ID v1 has %d (\"1:\" and 28 base64 characters)",
			cut(id, 64), len(id), communityIDLen)
	}
	if raw, err := base64.StdEncoding.DecodeString(id[2:]); err != nil || len(raw) != sha1.Size {
		return "", fmt.Errorf("malformed Community ID %q: after \"1:\" it must be the base64 of a 20-byte SHA-1", id)
	}
	return id, nil
}

// cut shortens s to at most n bytes for an error message.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// collectFlow gathers the blocks of the flow named by a Community ID or
// flow ID.
func (s *Server) collectFlow(c *call, bs *blockSet, id string, v url.Values) (int, error) {
	id, err := checkFlowParam(id)
	if err != nil {
		s.fail(c, http.StatusBadRequest, "bad_request", err.Error(), nil)
		return 0, errAnswered
	}
	from, to, err := s.parseWindow(c, v)
	if err != nil {
		s.fail(c, http.StatusBadRequest, "bad_request", err.Error(), nil)
		return 0, errAnswered
	}
	bs.win = newWindow(from, to)
	t0 := time.Now()
	refs, err := s.deps.Store.LookupFlow(c.ctx, id, from, to)
	bs.lookupDur = time.Since(t0)
	if errors.Is(err, storage.ErrFlowUnknown) {
		s.fail(c, http.StatusNotFound, "flow_unknown", "flow unknown", nil)
		return 0, errAnswered
	}
	if err != nil {
		return 0, fmt.Errorf("lookup flow: %w", err)
	}
	want := map[flow.ID]bool{}
	for _, r := range refs {
		if !r.FlowID.IsZero() {
			want[r.FlowID] = true
		}
	}
	expired, err := s.scanRefs(c, bs, refs, from, to, want)
	if err != nil {
		return 0, err
	}
	inner, err := s.collectTunnelOf(c, bs, refs, from, to)
	if err != nil {
		return 0, err
	}
	if len(bs.blocks) == 0 && bs.outside > 0 && expired == 0 {
		s.fail(c, http.StatusNotFound, "no_packets_in_window",
			"the flow has no packet between from and to (its blocks around them hold packets outside only)", nil)
		return 0, errAnswered
	}
	if len(bs.blocks) == 0 {
		s.failNoPackets(c, refs, expired)
		return 0, errAnswered
	}
	return len(want) + inner, nil
}

// scanRefs scans the blocks of each flow instance within [from, to]
// until the block set is full; it returns how many instances' packets
// had expired.
func (s *Server) scanRefs(c *call, bs *blockSet, refs []storage.FlowRef, from, to time.Time, want map[flow.ID]bool) (int, error) {
	expired := 0
	for _, r := range refs {
		f, t := r.First, r.Last
		if !from.IsZero() && from.After(f) {
			f = from
		}
		if !to.IsZero() && to.Before(t) {
			t = to
		}
		if t.Before(f) {
			continue
		}
		err := bs.scan(c.ctx, s.deps.Store, r.Key, f, t, want)
		if errors.Is(err, storage.ErrPacketsExpired) {
			expired++
			bs.expired = append(bs.expired, expiredScan{id: r.FlowID, from: f, to: t, whole: f.Equal(r.First)})
			continue
		}
		if err != nil {
			return expired, fmt.Errorf("scan blocks: %w", err)
		}
		if bs.full {
			break
		}
	}
	return expired, nil
}

// failNoPackets answers a known flow without stored packets: exported
// flows never have any, expired ones had some, else they are not flushed
// yet (retry).
func (s *Server) failNoPackets(c *call, refs []storage.FlowRef, expired int) {
	exported := len(refs) > 0
	for _, r := range refs {
		exported = exported && flow.IsExporterSensor(r.SensorID)
	}
	switch {
	case exported:
		// Every instance came from a NetFlow/IPFIX/sFlow exporter: there
		// are no packets, and there never will be.
		s.fail(c, http.StatusNotFound, "no_packets",
			"flow known from a flow exporter (router or switch: NetFlow, IPFIX or sFlow); exporters send no packets", nil)
	case expired > 0:
		s.fail(c, http.StatusGone, "packets_expired", "packets expired", nil)
	default:
		c.w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(s.cfg.NotFlushedRetry.Seconds()))))
		s.fail(c, http.StatusNotFound, "not_flushed", "flow known but not yet flushed: no packets stored yet", nil)
	}
}

// matchingRecords scans the records of [from, to] for the distinct ones
// keep accepts, up to max (tooMany reports more); op names the scan in
// errors.
func (s *Server) matchingRecords(ctx context.Context, from, to time.Time, max int, op string,
	keep func(*flow.Record) bool) (recs []flow.Record, tooMany bool, err error) {
	seen := map[flow.ID]bool{}
	err = s.deps.Store.ScanRecords(ctx, from, to, func(r *flow.Record) error {
		if seen[r.ID] || !keep(r) {
			return nil
		}
		if len(recs) == max {
			tooMany = true
			return errStop
		}
		seen[r.ID] = true
		recs = append(recs, *r)
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, false, fmt.Errorf("%s: %w", op, err)
	}
	return recs, tooMany, nil
}

// collectQuery gathers the blocks of the flows matching a query.
func (s *Server) collectQuery(c *call, bs *blockSet, expr string) (int, error) {
	q, ok := s.parseQuery(c, expr)
	if !ok {
		return 0, errAnswered
	}
	t0 := time.Now()
	defer func() { bs.lookupDur = time.Since(t0) - bs.scanDur }()
	recs, tooMany, err := s.matchingRecords(c.ctx, q.From, q.To, bs.caps.flows, "scan records", q.Match)
	if err != nil {
		return 0, err
	}
	if tooMany && !bs.caps.truncate {
		s.fail(c, http.StatusRequestEntityTooLarge, "cap_exceeded",
			fmt.Sprintf("more than %d flows match; narrow the query or repeat with truncate=1", bs.caps.flows),
			map[string]any{"max_flows": bs.caps.flows})
		return 0, errAnswered
	}
	bs.flowsCut = tooMany
	for i := range recs {
		r := &recs[i]
		end := r.End
		if end.IsZero() {
			end = r.Start
		}
		err := bs.scan(c.ctx, s.deps.Store, r.Key(), r.Start, end, map[flow.ID]bool{r.ID: true})
		if errors.Is(err, storage.ErrPacketsExpired) {
			bs.expired = append(bs.expired, expiredScan{id: r.ID, from: r.Start, to: end, whole: true})
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("scan blocks: %w", err)
		}
		if bs.full {
			break
		}
	}
	return len(recs), nil
}

// parseQuery parses a query, answering 400 or 422 on error.
func (s *Server) parseQuery(c *call, expr string) (*query.Query, bool) {
	q, err := query.Parse(expr, s.deps.Now(), s.cfg.Query)
	switch {
	case err == nil:
		c.audit.From, c.audit.To = q.From, q.To
		return q, true
	case errors.Is(err, query.ErrSyntax), errors.Is(err, query.ErrEmptyWindow):
		s.fail(c, http.StatusBadRequest, "bad_request", err.Error(), nil)
	default:
		s.fail(c, http.StatusUnprocessableEntity, "query_too_costly", err.Error(), nil)
	}
	return nil, false
}

const ctxCheckEvery = 1024

// streamPcap answers with the blocks' packets merged in time order, the
// counts and completeness in the trailers.
func (s *Server) streamPcap(c *call, bs *blockSet, format pcapio.Format, nflows int) {
	linkType, ok := s.pcapLinkType(c, bs, format)
	if !ok {
		return
	}
	h := c.w.Header()
	s.setPcapHeaders(c, bs, format, nflows)
	c.w.WriteHeader(http.StatusOK)

	packets, bytes, complete, err := s.writePackets(c, bs, format, linkType)
	if err != nil {
		complete = false
		c.audit.Error = err.Error()
		s.log.Warn("pcap stream ended early", "err", err, "subject", c.audit.Subject, "packets", packets)
	}
	if !complete {
		s.m.truncated.Inc()
		c.audit.Truncated = true
	}
	s.m.sentPackets.Add(float64(packets))
	c.audit.Packets = packets
	h.Set("X-Tapir-Complete", strconv.FormatBool(complete))
	h.Set("X-Tapir-Packets", strconv.FormatInt(packets, 10))
	h.Set("X-Tapir-Bytes", strconv.FormatInt(bytes, 10))
}

// pcapLinkType is the answer's link type (the first block's, Ethernet
// without blocks); a classic pcap of several link types fails the call.
func (s *Server) pcapLinkType(c *call, bs *blockSet, format pcapio.Format) (uint16, bool) {
	var linkType uint16 = 1
	if len(bs.blocks) > 0 {
		linkType = bs.blocks[0].Meta.LinkType
	}
	if format != pcapio.FormatPcap {
		return linkType, true
	}
	for _, b := range bs.blocks {
		if b.Meta.LinkType != linkType {
			s.fail(c, http.StatusUnprocessableEntity, "link_types",
				fmt.Sprintf("flows of link types %d and %d: classic pcap holds one, ask for format=pcapng", linkType, b.Meta.LinkType), nil)
			return 0, false
		}
	}
	return linkType, true
}

// setPcapHeaders sets the answer's headers and announces the trailers.
func (s *Server) setPcapHeaders(c *call, bs *blockSet, format pcapio.Format, nflows int) {
	h := c.w.Header()
	if format == pcapio.FormatPcap {
		h.Set("Content-Type", "application/vnd.tcpdump.pcap")
	} else {
		h.Set("Content-Type", "application/x-pcapng")
	}
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="tapir.%s"`, format))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Tapir-Flows", strconv.Itoa(nflows))
	// Where the time before the first byte went (ms): finding the flow,
	// then reading and decoding its blocks.
	h.Set("Server-Timing", fmt.Sprintf("lookup;dur=%.3f, scan;dur=%.3f",
		float64(bs.lookupDur)/1e6, float64(bs.scanDur)/1e6))
	if bs.exceeded() {
		h.Set("X-Tapir-Truncated", "true")
	}
	// Nothing lost silently: an answer missing packets that retention
	// removed says so (X-Tapir-Complete speaks of what the store still
	// holds).
	if p := bs.packetsExpired(); p != nil {
		h.Set("X-Tapir-Packets-Expired", p.Header())
		c.audit.PacketsExpired = p
		s.m.partialExpired.Inc()
	}
	h.Set("Trailer", "X-Tapir-Complete, X-Tapir-Packets, X-Tapir-Bytes")
}

// writePackets writes the blocks' packets in time order up to the
// call's caps; complete is false when a cap or the block set cut it. The
// output goes through a write buffer lent by s.bufs.
func (s *Server) writePackets(c *call, bs *blockSet, format pcapio.Format, linkType uint16) (packets, bytes int64, complete bool, err error) {
	bw := s.bufs.get(c.w)
	defer s.bufs.put(bw)
	pw, err := pcapio.NewWriter(bw, format, linkType)
	if err != nil {
		return 0, 0, !bs.exceeded(), err
	}
	packets, bytes, complete, err = bs.eachPacket(c.ctx, func(p packet) error {
		return pw.WritePacket(pcapio.InterfaceOf(&p.block.Meta), p.ts, p.origLen, p.data)
	})
	if cerr := pw.Close(); err == nil {
		err = cerr
	}
	if ferr := bw.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("flush pcap: %w", ferr)
	}
	return packets, bytes, complete, err
}

// packet is one stored packet of an answer, as eachPacket meets it. data
// is valid only during the call.
type packet struct {
	block   *block.Block
	ts      int64 // Unix ns
	origLen int
	data    []byte
}

// eachPacket calls fn for the block set's packets merged in time order,
// inside the request's window, up to the packet and byte caps: the one
// walk behind every answer made of a flow's packets (pcap download,
// packet list, packet bytes, Follow Stream), so they cannot disagree.
// complete is false when a cap or the block set cut the walk; fn
// returning errStop ends it early without error (complete false).
func (bs *blockSet) eachPacket(ctx context.Context, fn func(packet) error) (packets, bytes int64, complete bool, err error) {
	complete = !bs.exceeded()
	err = pcapio.Merge(bs.blocks, func(b *block.Block, ts int64, origLen int, data []byte) error {
		if !bs.win.contains(ts) {
			return nil // the request's from/to cut per packet, not per block
		}
		if packets+1 > bs.caps.packets || bytes+int64(len(data)) > bs.caps.bytes {
			complete = false
			return errStop
		}
		if packets%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		packets++
		bytes += int64(len(data))
		err := fn(packet{block: b, ts: ts, origLen: origLen, data: data})
		if errors.Is(err, errStop) {
			complete = false
		}
		return err
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return packets, bytes, complete, err
}
