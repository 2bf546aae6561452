package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
)

// A tunnel's own flow record (flow.Record.IsTunnelFlow: the outer 5-tuple
// of a VXLAN, GRE, IP-in-IP... tunnel the sensor took apart) has no
// blocks of its own: each packet is stored once, with the inner flow it
// carries. A pcap request by the tunnel's Community ID or flow ID is
// answered with the packets of the inner flows whose tunnel chain passes
// through that tunnel (a level with the tunnel's outer tuple), from the
// tunnel's sensor, in the window, merged in time order with whatever the
// tunnel's tuple stored itself (frames the sensor could not take apart).

// tunnelRef is a flow instance asked for that may be a tunnel: its
// sensor, its tuple as a key (VLANs aside) and its span.
type tunnelRef struct {
	sensor      string
	key         flow.Key // the tuple, VLANs aside
	pair        flow.Key // the address pair and protocol, ports aside
	first, last time.Time
}

// collectTunnelOf adds the packets of the tunnels among refs that went
// to their inner flows: when the flow stored no block of its own (a
// tunnel whose every frame was taken apart), or, with tunnel=1, also
// beside the frames stored on the tunnel's tuple (frames the sensor
// could not take apart, which are all a Community ID names by default,
// as tshark's per-frame Community ID does). It returns the number of
// inner flows added.
func (s *Server) collectTunnelOf(c *call, bs *blockSet, refs []storage.FlowRef, from, to time.Time) (int, error) {
	if bs.full || (len(bs.blocks) > 0 && !bs.tunnel) {
		return 0, nil
	}
	return s.collectTunnel(c, bs, refs, from, to)
}

// collectTunnel adds to bs the blocks, within [from, to], of the inner
// flows carried by the tunnels among refs: records, on the ref's sensor
// and overlapping its span, whose chain has a level with the ref's
// tuple. It returns the number of inner flows (0 when no ref is a
// tunnel).
func (s *Server) collectTunnel(c *call, bs *blockSet, refs []storage.FlowRef, from, to time.Time) (int, error) {
	var tunnels []tunnelRef
	var lo, hi time.Time
	for _, r := range refs {
		k := r.Key
		k.VLAN, k.InnerVLAN, k.Mirror = 0, 0, 0 // chain levels hold no VLANs
		pair := k
		pair.PortA, pair.PortB = 0, 0
		tunnels = append(tunnels, tunnelRef{sensor: r.SensorID, key: k, pair: pair, first: r.First, last: r.Last})
		if lo.IsZero() || r.First.Before(lo) {
			lo = r.First
		}
		if r.Last.After(hi) {
			hi = r.Last
		}
	}
	lo, hi = clampWindow(lo, hi, from, to)
	if len(tunnels) == 0 || hi.Before(lo) {
		return 0, nil
	}
	t0 := time.Now()
	recs, tooMany, err := s.innerRecords(c, lo, hi, tunnels, bs.caps.flows)
	bs.lookupDur += time.Since(t0) // finding the inner flows is part of the flow's lookup
	if err != nil {
		return 0, err
	}
	if tooMany && !bs.caps.truncate {
		s.fail(c, http.StatusRequestEntityTooLarge, "cap_exceeded",
			fmt.Sprintf("the tunnel carries more than %d flows in the window; narrow from/to or repeat with truncate=1", bs.caps.flows),
			map[string]any{"max_flows": bs.caps.flows})
		return 0, errAnswered
	}
	bs.flowsCut = bs.flowsCut || tooMany
	enc, err := block.NewEncoder(block.DefaultEncoderConfig())
	if err != nil {
		return 0, fmt.Errorf("block encoder: %w", err)
	}
	defer enc.Close()
	bs.filter = tunnelFilter(enc, tunnels)
	defer func() { bs.filter = nil }()
	return len(recs), s.scanInner(c, bs, recs, from, to)
}

// clampWindow narrows [lo, hi] to [from, to] (zero ends unbounded).
func clampWindow(lo, hi, from, to time.Time) (time.Time, time.Time) {
	if !from.IsZero() && from.After(lo) {
		lo = from
	}
	if !to.IsZero() && to.Before(hi) {
		hi = to
	}
	return lo, hi
}

// innerRecords scans the records of [from, to] for those the tunnels
// carry, up to max (tooMany reports more).
func (s *Server) innerRecords(c *call, from, to time.Time, tunnels []tunnelRef, max int) (recs []flow.Record, tooMany bool, err error) {
	return s.matchingRecords(c.ctx, from, to, max, "scan records for a tunnel's inner flows", func(r *flow.Record) bool {
		return r.Tunnels.Len() != 0 && !r.IsTunnelFlow() && carriedBy(r, tunnels)
	})
}

// carriedBy reports whether r's chain may pass through one of the
// tunnels: a level (other than a mirror encapsulation) between the
// tunnel's two addresses with its protocol, on the tunnel's sensor,
// overlapping its span. Ports are left aside: the chain is the flow's
// first packet's, and a UDP tunnel's two directions often leave from
// different source ports; the packets are then picked one by one.
func carriedBy(r *flow.Record, tunnels []tunnelRef) bool {
	end := r.End
	if end.IsZero() {
		end = r.Start
	}
	for i := range r.Tunnels.Levels {
		l := &r.Tunnels.Levels[i]
		if l.Mirror {
			continue
		}
		t := l.Tuple()
		t.SrcPort, t.DstPort = 0, 0
		k, _ := t.Key()
		for _, tr := range tunnels {
			if k == tr.pair && r.SensorID == tr.sensor && !end.Before(tr.first) && !r.Start.After(tr.last) {
				return true
			}
		}
	}
	return false
}

// tunnelFilter returns a block filter keeping the packets that went
// through one of the tunnels, re-encoding blocks with enc.
func tunnelFilter(enc *block.Encoder, tunnels []tunnelRef) func(*block.Block) (*block.Block, error) {
	ms := make([]*decode.TunnelMatch, len(tunnels))
	for i, tr := range tunnels {
		ms[i] = decode.NewTunnelMatch(tr.key.Forward())
	}
	return func(b *block.Block) (*block.Block, error) {
		link := decode.LinkType(b.Meta.LinkType)
		return block.Filter(enc, b, func(_ int64, data []byte) bool {
			for _, m := range ms {
				if m.Match(link, data) {
					return true
				}
			}
			return false
		})
	}
}

// scanInner adds the blocks of the inner flow records within [from, to].
func (s *Server) scanInner(c *call, bs *blockSet, recs []flow.Record, from, to time.Time) error {
	for i := range recs {
		r := &recs[i]
		end := r.End
		if end.IsZero() {
			end = r.Start
		}
		f, t := clampWindow(r.Start, end, from, to)
		if t.Before(f) {
			continue
		}
		err := bs.scan(c.ctx, s.deps.Store, r.Key(), f, t, map[flow.ID]bool{r.ID: true})
		if errors.Is(err, storage.ErrPacketsExpired) {
			bs.expired = append(bs.expired, expiredScan{id: r.ID, from: f, to: t, whole: f.Equal(r.Start)})
			continue
		}
		if err != nil {
			return fmt.Errorf("scan blocks of inner flow %s: %w", r.ID, err)
		}
		if bs.full {
			return nil
		}
	}
	return nil
}
