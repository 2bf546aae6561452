package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/pcapio"
)

// pcapSelection is the flow selection common to all pcap sources.
type pcapSelection struct {
	communityID string
	flowID      flow.ID // zero = any
}

// match reports whether a block belongs to the selection.
func (s *pcapSelection) match(m block.Meta) bool {
	if s.communityID != "" && m.CommunityID != s.communityID {
		return false
	}
	if !s.flowID.IsZero() && m.FlowID != s.flowID {
		return false
	}
	return true
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

func runPcap(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("tapir pcap", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	out := fs.String("o", "", "output file (- for stdout)")
	format := fs.String("format", "pcap", "output format: pcap or pcapng")
	cid := fs.String("community-id", "", "only the flow with this Community ID")
	fid := fs.String("flow-id", "", "only the flow with this tapir flow ID (32 hex digits)")
	var sources []pcapSource
	for _, mk := range pcapSources {
		s := mk()
		s.flags(fs)
		sources = append(sources, s)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	f, err := pcapio.ParseFormat(*format)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *out == "" {
		return fmt.Errorf("%w: -o FILE is required (- for stdout)", errUsage)
	}
	sel := &pcapSelection{communityID: *cid}
	if *fid != "" {
		if sel.flowID, err = flow.ParseID(*fid); err != nil {
			return fmt.Errorf("%w: --flow-id: %v", errUsage, err)
		}
	}
	var src pcapSource
	for _, s := range sources {
		if s.selected() {
			if src != nil {
				return fmt.Errorf("%w: choose one packet source", errUsage)
			}
			src = s
		}
	}
	if src == nil {
		return fmt.Errorf("%w: no packet source given (e.g. --blocks DIR)", errUsage)
	}
	if ss, ok := src.(pcapStreamer); ok {
		return writePcapStream(ctx, e, *out, f, sel, ss)
	}
	blocks, err := src.blocks(ctx, e, sel)
	if err != nil {
		return err
	}
	if f == pcapio.FormatPcap {
		// Fail before creating the output file.
		for _, b := range blocks {
			if b.Meta.LinkType != blocks[0].Meta.LinkType {
				return fmt.Errorf("blocks hold link types %d and %d: %w (--format pcapng)",
					blocks[0].Meta.LinkType, b.Meta.LinkType, pcapio.ErrLinkType)
			}
		}
	}
	w := io.Writer(e.stdout)
	var file *os.File
	if *out != "-" {
		if file, err = os.Create(*out); err != nil {
			return fmt.Errorf("create output: %w", err)
		}
		w = file
	}
	st, err := pcapio.WriteBlocks(w, f, blocks)
	if file != nil {
		if cerr := file.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close output: %w", cerr)
		}
		if err != nil {
			os.Remove(*out)
		}
	}
	if err != nil {
		return err
	}
	e.log.Info("pcap written", "blocks", st.Blocks, "packets", st.Packets, "bytes", st.Bytes, "format", f)
	return nil
}
