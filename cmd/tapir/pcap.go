package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/collector/query"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/pcapio"
)

// pcapSelection is the flow selection and time window common to all
// pcap sources.
type pcapSelection struct {
	communityID string
	flowID      flow.ID // zero = any
	// from and to are --from and --to as given (the API parses them
	// itself); fromNs and toNs are them parsed, 0 when not given.
	from, to     string
	fromNs, toNs int64
	// tunnel: a tunnel flow's every packet, also when frames are stored
	// on its own tuple (--tunnel; see pcap_blocks.go and the API's
	// tunnel parameter).
	tunnel bool
}

// match reports whether a block belongs to the selection and holds
// packets in its window.
func (s *pcapSelection) match(m block.Meta) bool {
	if s.communityID != "" && m.CommunityID != s.communityID {
		return false
	}
	if !s.flowID.IsZero() && m.FlowID != s.flowID {
		return false
	}
	return (s.fromNs == 0 || m.Last >= s.fromNs) && (s.toNs == 0 || m.First < s.toNs)
}

// inWindow reports whether a packet time lies in [from, to).
func (s *pcapSelection) inWindow(tsNanos int64) bool {
	return (s.fromNs == 0 || tsNanos >= s.fromNs) && (s.toNs == 0 || tsNanos < s.toNs)
}

// narrowed reports whether the selection picks flows or a window (an
// empty result is then an error, not an empty capture).
func (s *pcapSelection) narrowed() bool {
	return s.communityID != "" || !s.flowID.IsZero() || s.fromNs != 0 || s.toNs != 0
}

// parseWindow parses --from and --to as the query language writes times.
func (s *pcapSelection) parseWindow(now time.Time) error {
	for _, w := range []struct {
		name, text string
		ns         *int64
	}{{"--from", s.from, &s.fromNs}, {"--to", s.to, &s.toNs}} {
		if w.text == "" {
			continue
		}
		t, err := query.ParseTime(w.text, now)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", errUsage, w.name, err)
		}
		*w.ns = t.UnixNano()
	}
	if s.fromNs != 0 && s.toNs != 0 && s.toNs <= s.fromNs {
		return fmt.Errorf("%w: --to must be after --from", errUsage)
	}
	return nil
}

// pcapSource is one place `tapir pcap` can take blocks from. Each source
// lives in its own file (pcap_blocks.go: --blocks DIR) and appends its
// constructor to pcapSources in init.
type pcapSource interface {
	// flags registers the source's flags.
	flags(fs *flag.FlagSet)
	// selected reports whether the command line chose this source.
	selected() bool
	// blocks returns the selected blocks.
	blocks(ctx context.Context, e *env, sel *pcapSelection) ([]*block.Block, error)
}

var pcapSources []func() pcapSource

// pcapStreamer is a source that produces the capture file itself (the
// collector's API answers pcap over HTTP: pcapflow.go) instead of blocks;
// runPcap hands it the output.
type pcapStreamer interface {
	stream(ctx context.Context, e *env, f pcapio.Format, sel *pcapSelection, w io.Writer) error
}

func init() {
	register(&command{name: "pcap", summary: "write the packets of stored blocks as pcap or pcapng", run: runPcap})
}

// pcapRequest is a parsed `tapir pcap` command line.
type pcapRequest struct {
	out    string // output path, - for stdout
	format pcapio.Format
	sel    *pcapSelection
	src    pcapSource
}

func runPcap(ctx context.Context, e *env, args []string) error {
	req, err := parsePcapArgs(e, args)
	if err != nil {
		return err
	}
	if ss, ok := req.src.(pcapStreamer); ok {
		return writePcapStream(ctx, e, req.out, req.format, req.sel, ss)
	}
	blocks, err := req.src.blocks(ctx, e, req.sel)
	if err != nil {
		return err
	}
	if len(blocks) == 0 && req.sel.narrowed() {
		return fmt.Errorf("no packets of %s: %w", req.sel, errNoPackets)
	}
	if req.format == pcapio.FormatPcap {
		// Fail before creating the output file.
		if err := sameLinkType(blocks); err != nil {
			return err
		}
	}
	st, err := writeBlocksTo(e, req.out, req.format, blocks, req.sel)
	if err != nil {
		return err
	}
	e.log.Info("pcap written", "blocks", st.Blocks, "packets", st.Packets, "bytes", st.Bytes, "format", req.format)
	return nil
}

// parsePcapArgs parses the command line: output, format, selection and
// the one packet source chosen.
func parsePcapArgs(e *env, args []string) (*pcapRequest, error) {
	fs := flag.NewFlagSet("tapir pcap", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	out := fs.String("o", "", "output file (- for stdout)")
	format := fs.String("format", "pcap", "output format: pcap or pcapng")
	cid := fs.String("community-id", "", "only the flow with this Community ID")
	fid := fs.String("flow-id", "", "only the flow with this tapir flow ID (32 hex digits)")
	sel := &pcapSelection{}
	fs.StringVar(&sel.from, "from", "", "only packets at or after this time (RFC 3339, YYYY-MM-DD, unix seconds, '5m ago')")
	fs.StringVar(&sel.to, "to", "", "only packets before this time")
	fs.BoolVar(&sel.tunnel, "tunnel", false, "a tunnel's own flow (tapir.tunnel_flow): every packet of the tunnel, also when frames the sensor could not take apart are stored on it")
	var sources []pcapSource
	for _, mk := range pcapSources {
		s := mk()
		s.flags(fs)
		sources = append(sources, s)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	f, err := pcapio.ParseFormat(*format)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if *out == "" {
		return nil, fmt.Errorf("%w: -o FILE is required (- for stdout)", errUsage)
	}
	sel.communityID = *cid
	if err := sel.parseWindow(time.Now()); err != nil {
		return nil, err
	}
	if *fid != "" {
		if sel.flowID, err = flow.ParseID(*fid); err != nil {
			return nil, fmt.Errorf("%w: --flow-id: %v", errUsage, err)
		}
	}
	src, err := chooseSource(sources)
	if err != nil {
		return nil, err
	}
	return &pcapRequest{out: *out, format: f, sel: sel, src: src}, nil
}

// chooseSource returns the one source the command line selected.
func chooseSource(sources []pcapSource) (pcapSource, error) {
	var src pcapSource
	for _, s := range sources {
		if s.selected() {
			if src != nil {
				return nil, fmt.Errorf("%w: choose one packet source", errUsage)
			}
			src = s
		}
	}
	if src == nil {
		return nil, fmt.Errorf("%w: no packet source given (e.g. --blocks DIR)", errUsage)
	}
	return src, nil
}

// sameLinkType fails when the blocks hold more than one link type (a
// pcap file has one).
func sameLinkType(blocks []*block.Block) error {
	for _, b := range blocks {
		if b.Meta.LinkType != blocks[0].Meta.LinkType {
			return fmt.Errorf("blocks hold link types %d and %d: %w (--format pcapng)",
				blocks[0].Meta.LinkType, b.Meta.LinkType, pcapio.ErrLinkType)
		}
	}
	return nil
}

// writeBlocksTo writes the blocks' packets in the selection's window to
// out (stdout for -); a file left incomplete by an error is removed.
func writeBlocksTo(e *env, out string, f pcapio.Format, blocks []*block.Block, sel *pcapSelection) (pcapio.WriteStats, error) {
	if out == "-" {
		return writeWindow(e.stdout, f, blocks, sel)
	}
	file, err := os.Create(out)
	if err != nil {
		return pcapio.WriteStats{}, fmt.Errorf("create output: %w", err)
	}
	st, err := writeWindow(file, f, blocks, sel)
	if cerr := file.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close output: %w", cerr)
	}
	if err != nil {
		os.Remove(out)
	}
	return st, err
}

// errNoPackets: the selection matched no stored packets.
var errNoPackets = errors.New("nothing stored matches (no output written)")

// String describes the selection for messages.
func (s *pcapSelection) String() string {
	var parts []string
	if s.communityID != "" {
		parts = append(parts, "Community ID "+s.communityID)
	}
	if !s.flowID.IsZero() {
		parts = append(parts, "flow ID "+s.flowID.String())
	}
	if s.from != "" {
		parts = append(parts, "from "+s.from)
	}
	if s.to != "" {
		parts = append(parts, "to "+s.to)
	}
	return strings.Join(parts, ", ")
}

// writeWindow merges the blocks' packets in timestamp order and writes
// those in the selection's window: --from/--to cut per packet, not per
// block. The blocks share one link type for classic pcap (sameLinkType).
func writeWindow(w io.Writer, f pcapio.Format, blocks []*block.Block, sel *pcapSelection) (pcapio.WriteStats, error) {
	st := pcapio.WriteStats{Blocks: len(blocks)}
	var linkType uint16 = 1
	if len(blocks) > 0 {
		linkType = blocks[0].Meta.LinkType
	}
	pw, err := pcapio.NewWriter(w, f, linkType)
	if err != nil {
		return st, err
	}
	err = pcapio.Merge(blocks, func(b *block.Block, ts int64, origLen int, data []byte) error {
		if !sel.inWindow(ts) {
			return nil
		}
		st.Packets++
		st.Bytes += int64(len(data))
		return pw.WritePacket(pcapio.InterfaceOf(&b.Meta), ts, origLen, data)
	})
	if cerr := pw.Close(); err == nil {
		err = cerr
	}
	return st, err
}
