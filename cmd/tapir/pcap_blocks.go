package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/tapir-sensor/tapir/block"
)

func init() {
	pcapSources = append(pcapSources, func() pcapSource { return &blocksDirSource{} })
}

// blocksDirSource reads block segment files from a directory
// (tapir-sensor --blocks-out DIR).
type blocksDirSource struct{ dir string }

func (s *blocksDirSource) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.dir, "blocks", "", "read blocks from this segment directory (tapir-sensor --blocks-out)")
}

func (s *blocksDirSource) selected() bool { return s.dir != "" }

func (s *blocksDirSource) blocks(ctx context.Context, e *env, sel *pcapSelection) ([]*block.Block, error) {
	var out []*block.Block
	r := block.DirReader{Dir: s.dir, Filter: sel.match}
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
