package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tapir-sensor/tapir/collector/inspect"
	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
)

// routeInspect registers the flow inspection endpoints:
//
//	GET /api/v1/flows/{id}                      role flows:read
//	GET /api/v1/flows/{id}/packets[?limit=N]    role pcap:read
//	GET /api/v1/flows/{id}/packets/{n}          role pcap:read
//	GET /api/v1/flows/{id}/stream[?format=json|ascii]  role pcap:read
//
// id is a Community ID or a flow ID (a '/' of a Community ID written
// %2F). The packet endpoints also take from and to as /api/v1/pcap
// does, answer its errors (404 flow_unknown, not_flushed, 410
// packets_expired, ...) and are audited as retrievals: they hold
// payload.
func (s *Server) routeInspect() {
	s.mux.Handle("GET /api/v1/flows/{id}", s.route("flow", RoleFlowsRead, true, s.handleFlowRecord))
	s.mux.Handle("GET /api/v1/flows/{id}/packets", s.route("packets", RolePcapRead, true, s.handlePacketList))
	s.mux.Handle("GET /api/v1/flows/{id}/packets/{n}", s.route("packet", RolePcapRead, true, s.handlePacket))
	s.mux.Handle("GET /api/v1/flows/{id}/stream", s.route("stream", RolePcapRead, true, s.handleStream))
}

// flowIDParam returns the request's flow ID or Community ID, recorded in
// the audit entry; a malformed one is answered 400.
func (s *Server) flowIDParam(c *call) (string, bool) {
	raw := c.r.PathValue("id")
	c.audit.setParams(raw, "", s.cfg.Audit.MaxParamBytes)
	id, err := checkFlowParam(raw)
	if err != nil {
		s.fail(c, http.StatusBadRequest, "bad_request", err.Error(), nil)
		return "", false
	}
	return id, true
}

// handleFlowRecord answers the flow's record (its latest report) as ECS
// JSON; with several instances under one Community ID, the latest one.
func (s *Server) handleFlowRecord(c *call) {
	id, ok := s.flowIDParam(c)
	if !ok {
		return
	}
	rec, err := s.lookupRecord(c.ctx, id)
	if errors.Is(err, storage.ErrFlowUnknown) {
		s.fail(c, http.StatusNotFound, "not_found", "flow unknown", nil)
		return
	}
	if err != nil {
		s.storeError(c, err)
		return
	}
	c.audit.Flows = 1
	s.answerJSON(c, rec)
}

// lookupRecord finds the latest record of the flow instances id names.
// The index gives their time spans; the records overlapping the latest
// instance's first instant are read first (cheap whatever the store's
// size), and only if that misses, those of the instances' whole span.
// storage.ErrFlowUnknown when no record is stored.
func (s *Server) lookupRecord(ctx context.Context, id string) (*flow.Record, error) {
	refs, err := s.deps.Store.LookupFlow(ctx, id, time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	want := map[flow.ID]bool{}
	var from, to, latest time.Time
	for _, r := range refs {
		want[r.FlowID] = true
		if !r.First.IsZero() && (from.IsZero() || r.First.Before(from)) {
			from = r.First
		}
		if r.First.After(latest) {
			latest = r.First
		}
		if r.Last.After(to) {
			to = r.Last
		}
	}
	if from.IsZero() || to.IsZero() {
		return nil, storage.ErrFlowUnknown
	}
	rec, err := s.latestRecord(ctx, id, want, latest, latest)
	if rec == nil && err == nil {
		rec, err = s.latestRecord(ctx, id, want, from, to)
	}
	if err == nil && rec == nil {
		err = storage.ErrFlowUnknown
	}
	return rec, err
}

// latestRecord scans the records overlapping [from, to] for the latest
// one of the wanted flow IDs (or of Community ID id); nil when none.
func (s *Server) latestRecord(ctx context.Context, id string, want map[flow.ID]bool, from, to time.Time) (*flow.Record, error) {
	var best *flow.Record
	err := s.deps.Store.ScanRecords(ctx, from, to, func(r *flow.Record) error {
		if !want[r.ID] && r.CommunityID != id {
			return nil
		}
		if best == nil || r.Start.After(best.Start) || (r.Start.Equal(best.Start) && r.End.After(best.End)) {
			cp := *r
			best = &cp
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan records: %w", err)
	}
	return best, nil
}

// collectInspect gathers the blocks of the request's flow within the
// caps, as /api/v1/pcap does (same lookup, window and errors), and
// finds its record for the packets' directions (nil when none is
// stored). It answers the errors itself; ok is false then.
func (s *Server) collectInspect(c *call, cp caps) (bs *blockSet, rec *flow.Record, id string, ok bool) {
	id, ok = s.flowIDParam(c)
	if !ok {
		return nil, nil, "", false
	}
	bs = &blockSet{caps: cp, seen: map[blockID]bool{}, firstKept: map[flow.ID]keptBlock{}}
	n, err := s.collectFlow(c, bs, id, c.r.URL.Query())
	if err != nil {
		s.storeError(c, err)
		return nil, nil, "", false
	}
	c.audit.Flows = n
	rec, err = s.lookupRecord(c.ctx, id)
	if err != nil && !errors.Is(err, storage.ErrFlowUnknown) {
		s.storeError(c, err)
		return nil, nil, "", false
	}
	return bs, rec, id, true
}

// directions tells a packet's direction relative to the flow's
// initiator: the record's source, or without a record the sender of the
// first packet.
type directions struct {
	fwd   bool // whether the initiator's tuple is the key's forward one
	known bool
}

func newDirections(rec *flow.Record) *directions {
	d := &directions{}
	if rec != nil && rec.Tuple.Family != flow.FamilyLink {
		_, d.fwd = rec.Tuple.Key()
		d.known = true
	}
	return d
}

// of returns "c2s" (from the initiator) or "s2c".
func (d *directions) of(link uint16, frame []byte) string {
	var p decode.Packet
	decode.Decode(decode.LinkType(link), frame, &p)
	if !p.HasTuple {
		return "c2s"
	}
	_, fwd := p.Tuple.Key()
	if !d.known {
		d.fwd, d.known = fwd, true
	}
	if fwd == d.fwd {
		return "c2s"
	}
	return "s2c"
}

// packetInfo is one line of a packet list.
type packetInfo struct {
	N        int       `json:"n"`
	Time     time.Time `json:"time"`
	Length   int       `json:"length"`   // on the wire
	Captured int       `json:"captured"` // stored
	Dir      string    `json:"dir"`
	Summary  string    `json:"summary"`
}

// parseLimit reads the optional limit parameter: def when absent, at
// most max.
func parseLimit(c *call, def, max int) (int, error) {
	l := c.r.URL.Query().Get("limit")
	if l == "" {
		return def, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n <= 0 {
		return 0, errors.New("limit must be a positive integer")
	}
	return min(n, max), nil
}

// handlePacketList answers the flow's packets in time order, each with
// its time, lengths, direction and summary line, at most limit of them
// (more says whether there are others).
func (s *Server) handlePacketList(c *call) {
	limit, err := parseLimit(c, s.cfg.Inspect.PacketsLimit, s.cfg.Inspect.PacketsMaxLimit)
	if err != nil {
		c.audit.setParams(c.r.PathValue("id"), "", s.cfg.Audit.MaxParamBytes)
		s.fail(c, http.StatusBadRequest, "bad_request", err.Error(), nil)
		return
	}
	bs, rec, id, ok := s.collectInspect(c, caps{packets: int64(limit), bytes: s.cfg.MaxBytes})
	if !ok {
		return
	}
	dirs, sum := newDirections(rec), inspect.NewSummarizer()
	list := []packetInfo{}
	n, _, complete, err := bs.eachPacket(c.ctx, func(p packet) error {
		link := p.block.Meta.LinkType
		list = append(list, packetInfo{N: len(list) + 1, Time: time.Unix(0, p.ts).UTC(), Length: p.origLen,
			Captured: len(p.data), Dir: dirs.of(link, p.data), Summary: sum.Summary(link, p.data)})
		return nil
	})
	if err != nil {
		s.storeError(c, err)
		return
	}
	c.audit.Packets = n
	c.audit.Truncated = !complete
	s.answerJSON(c, map[string]any{"flow": id, "packets": list, "more": !complete})
}

// packetDetail is one packet with its bytes and layers.
type packetDetail struct {
	N        int             `json:"n"`
	Time     time.Time       `json:"time"`
	Length   int             `json:"length"`
	Captured int             `json:"captured"`
	Dir      string          `json:"dir"`
	Data     []byte          `json:"data"` // base64 in JSON
	Layers   []inspect.Layer `json:"layers"`
}

// handlePacket answers packet n (from 1, in the packet list's order)
// of the flow with its captured bytes and a summary per layer.
func (s *Server) handlePacket(c *call) {
	want, err := strconv.Atoi(c.r.PathValue("n"))
	if err != nil || want <= 0 || want > s.cfg.Inspect.PacketsMaxLimit {
		c.audit.setParams(c.r.PathValue("id"), "", s.cfg.Audit.MaxParamBytes)
		s.fail(c, http.StatusBadRequest, "bad_request",
			fmt.Sprintf("packet number must be within 1..%d", s.cfg.Inspect.PacketsMaxLimit), nil)
		return
	}
	bs, rec, _, ok := s.collectInspect(c, caps{packets: int64(want), bytes: s.cfg.MaxBytes})
	if !ok {
		return
	}
	dirs := newDirections(rec)
	var found *packetDetail
	n := 0
	_, _, _, err = bs.eachPacket(c.ctx, func(p packet) error {
		n++
		link := p.block.Meta.LinkType
		dir := dirs.of(link, p.data) // every packet: without a record the first one names the initiator
		if n < want {
			return nil
		}
		found = &packetDetail{N: n, Time: time.Unix(0, p.ts).UTC(), Length: p.origLen, Captured: len(p.data), Dir: dir,
			Data: append([]byte(nil), p.data...), Layers: inspect.Layers(link, p.data)}
		return errStop
	})
	if err != nil {
		s.storeError(c, err)
		return
	}
	if found == nil {
		s.fail(c, http.StatusNotFound, "not_found", fmt.Sprintf("the flow has %d packets (in the window)", n), nil)
		return
	}
	c.audit.Packets = 1
	s.answerJSON(c, found)
}

// streamChunk is one chunk of a Follow Stream answer.
type streamChunk struct {
	Dir     string `json:"dir"`
	Data    []byte `json:"data"` // base64 in JSON
	Missing bool   `json:"missing,omitempty"`
}

// handleStream answers the flow's conversation reassembled both ways as
// Wireshark's Follow TCP (or UDP) Stream: format=json (default) gives
// the chunks, format=ascii the text tshark's `-z follow,tcp,ascii`
// prints between its Node lines and its closing separator. The packets
// read are capped by max_packets and inspect.stream_max_bytes;
// X-Tapir-Complete says whether the conversation was read whole.
func (s *Server) handleStream(c *call) {
	format := c.r.URL.Query().Get("format")
	if format == "" {
		format = "json"
	}
	c.audit.Format = format
	if format != "json" && format != "ascii" {
		c.audit.setParams(c.r.PathValue("id"), "", s.cfg.Audit.MaxParamBytes)
		s.fail(c, http.StatusBadRequest, "bad_request", "format must be json or ascii", nil)
		return
	}
	bs, _, _, ok := s.collectInspect(c, caps{packets: s.cfg.MaxPackets, bytes: s.cfg.Inspect.StreamMaxBytes})
	if !ok {
		return
	}
	var f inspect.Follower
	segs := 0
	n, _, complete, err := bs.eachPacket(c.ctx, func(p packet) error {
		if seg, ok := inspect.ParseSegment(p.block.Meta.LinkType, p.data, p.origLen); ok {
			f.Add(seg)
			segs++
		}
		return nil
	})
	if err != nil {
		s.storeError(c, err)
		return
	}
	if segs == 0 {
		s.fail(c, http.StatusUnprocessableEntity, "not_a_stream", "the flow holds no TCP or UDP packet to follow", nil)
		return
	}
	c.audit.Packets, c.audit.Truncated = n, !complete
	st := f.Stream()
	h := c.w.Header()
	h.Set("X-Tapir-Complete", strconv.FormatBool(complete))
	h.Set("X-Tapir-Client", inspect.Node(st.Client))
	h.Set("X-Tapir-Server", inspect.Node(st.Server))
	if format == "ascii" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		if _, err := c.w.Write([]byte(st.ASCII())); err != nil {
			c.audit.Error = fmt.Sprintf("write response: %v", err)
		}
		return
	}
	chunks := make([]streamChunk, len(st.Chunks))
	for i, ch := range st.Chunks {
		chunks[i] = streamChunk{Dir: "c2s", Data: ch.Data, Missing: ch.Missing}
		if ch.Server {
			chunks[i].Dir = "s2c"
		}
	}
	s.answerJSON(c, map[string]any{"client": inspect.Node(st.Client), "server": inspect.Node(st.Server), "chunks": chunks,
		"client_bytes": st.ClientBytes, "server_bytes": st.ServerBytes, "complete": complete})
}

// answerJSON answers 200 with v as JSON, not to be cached.
func (s *Server) answerJSON(c *call, v any) {
	c.w.Header().Set("Content-Type", "application/json")
	c.w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(c, v)
}
