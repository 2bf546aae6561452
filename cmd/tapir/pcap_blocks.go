package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/decode"
)

func init() {
	pcapSources = append(pcapSources, func() pcapSource { return &blocksDirSource{} })
}

// blocksDirSource reads block segment files from a directory
// (tapir-sensor --blocks-out).
type blocksDirSource struct {
	dir  string
	seed uint
}

func (s *blocksDirSource) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.dir, "blocks", "", "read blocks from this segment directory (tapir-sensor --blocks-out)")
	fs.UintVar(&s.seed, "community-seed", 0, "with --blocks and --community-id of a tunnel's own flow: the sensor's Community ID seed (0-65535)")
}

func (s *blocksDirSource) selected() bool { return s.dir != "" }

// blocks returns the selected blocks. A Community ID may name a tunnel's
// own flow (tapir.tunnel_flow), whose packets are stored with the inner
// flows it carries: when no block has that Community ID, or with
// --tunnel, the packets of the other blocks that went through a
// connection with that Community ID are added (as the API does).
func (s *blocksDirSource) blocks(ctx context.Context, e *env, sel *pcapSelection) ([]*block.Block, error) {
	out, err := s.read(ctx, e, sel.match)
	if err != nil || sel.communityID == "" || !sel.flowID.IsZero() || (len(out) > 0 && !sel.tunnel) {
		return out, err
	}
	inner, err := s.tunnelBlocks(ctx, e, sel)
	return append(out, inner...), err
}

// tunnelBlocks returns the packets, as blocks, of the blocks in sel's
// window not of sel's Community ID that went through a tunnel with that
// Community ID (its outer connection).
func (s *blocksDirSource) tunnelBlocks(ctx context.Context, e *env, sel *pcapSelection) ([]*block.Block, error) {
	if s.seed > 0xffff {
		return nil, fmt.Errorf("%w: --community-seed %d > 65535", errUsage, s.seed)
	}
	m, err := decode.NewTunnelMatchCommunityID(sel.communityID, uint16(s.seed))
	if err != nil {
		return nil, nil // not a Community ID v1: no tunnel has it
	}
	enc, err := block.NewEncoder(block.DefaultEncoderConfig())
	if err != nil {
		return nil, fmt.Errorf("block encoder: %w", err)
	}
	defer enc.Close()
	others := *sel
	others.communityID = ""
	all, err := s.read(ctx, e, func(meta block.Meta) bool {
		return meta.CommunityID != sel.communityID && others.match(meta)
	})
	if err != nil {
		return nil, err
	}
	var out []*block.Block
	for _, b := range all {
		link := decode.LinkType(b.Meta.LinkType)
		f, err := block.Filter(enc, b, func(_ int64, data []byte) bool { return m.Match(link, data) })
		if err != nil {
			return nil, err
		}
		if f != nil {
			out = append(out, f)
		}
	}
	return out, nil
}

// read returns the blocks of the directory that pass filter.
func (s *blocksDirSource) read(ctx context.Context, e *env, filter func(block.Meta) bool) ([]*block.Block, error) {
	var out []*block.Block
	r := block.DirReader{Dir: s.dir, Filter: filter}
	st, err := r.Read(func(_ block.Meta, b *block.Block) error {
		out = append(out, b)
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read blocks: %w", err)
	}
	if st.Damaged() {
		e.log.Warn("damaged blocks skipped", "dir", s.dir, "corrupt", st.Corrupt,
			"truncated_segments", st.Truncated, "skipped_bytes", st.SkippedBytes)
		for _, err := range st.Errors {
			e.log.Warn("damage", "err", err)
		}
	}
	return out, nil
}
