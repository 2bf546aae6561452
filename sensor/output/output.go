// Package output holds the sensor's local sinks: flow records as ECS JSON
// lines (`--flows-out`), packet blocks as segment files (`--blocks-out`),
// and a fan-out to several sinks. The collector stream is the export
// package's sink. Every sink here is safe for concurrent use.
package output

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/tapir-sensor/tapir/block"
	"github.com/tapir-sensor/tapir/flow"
)

// Sink receives the sensor's output: the engine's workers hand it flow
// records and encoded blocks, and every sink of the sensor (these, the
// collector stream, IPFIX, the eBPF counter merge) implements it. This is
// its one declaration (engine.Sink is an alias). Implementations must be
// safe for concurrent use (several workers call them) and must copy what
// they keep: the record and the encoded bytes are reused after the call
// returns.
type Sink interface {
	// AddRecord takes a flow record: a final record or a periodic update.
	AddRecord(rec *flow.Record) error
	// AddBlock takes one encoded packet block (see package block).
	AddBlock(encoded []byte) error
}

// FlowsJSON writes every flow record it gets as one ECS JSON object per
// line. Updates of long flows (event.reason "active") are written too;
// tapir.final tells final records apart. Blocks are ignored.
type FlowsJSON struct {
	mu     sync.Mutex
	w      *bufio.Writer
	closer io.Closer
	n      uint64
	line   []byte // the record being written, reused
}

// NewFlowsJSON writes to w; Close closes w if it is an io.Closer other
// than nil (pass a nopCloser for stdout).
func NewFlowsJSON(w io.Writer, closer io.Closer) *FlowsJSON {
	bw := bufio.NewWriterSize(w, 256<<10)
	return &FlowsJSON{w: bw, closer: closer}
}

// AddRecord writes the record.
func (f *FlowsJSON) AddRecord(rec *flow.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := rec.AppendJSON(f.line[:0])
	if err != nil {
		return fmt.Errorf("write flow record: %w", err)
	}
	f.line = append(b, '\n')
	f.n++
	if _, err := f.w.Write(f.line); err != nil {
		return fmt.Errorf("write flow record: %w", err)
	}
	return nil
}

// AddBlock ignores the block.
func (f *FlowsJSON) AddBlock([]byte) error { return nil }

// Records returns how many records were written.
func (f *FlowsJSON) Records() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// Close flushes and closes the output.
func (f *FlowsJSON) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.w.Flush()
	if f.closer != nil {
		err = errors.Join(err, f.closer.Close())
		f.closer = nil
	}
	if err != nil {
		return fmt.Errorf("close flows output: %w", err)
	}
	return nil
}

// FlowsFileMode is the mode of a --flows-out file the sensor creates:
// flow records name hosts, domains and URLs, so they are private to the
// sensor's user whatever the umask.
const FlowsFileMode os.FileMode = 0o600

// OpenFlowsFile opens path for --flows-out: truncated at start, or
// appended to (appendTo, when SIGHUP reopens it after logrotate moved it).
// A file it creates has FlowsFileMode; an existing file keeps its mode
// (logrotate's create directive, an administrator's choice).
func OpenFlowsFile(path string, appendTo bool) (*os.File, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if appendTo {
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	f, err := os.OpenFile(path, flags, FlowsFileMode)
	if err != nil {
		return nil, fmt.Errorf("open flows output: %w", err)
	}
	return f, nil
}

// Switch flushes what is buffered to the current writer, closes it (when
// it has a closer) and goes on writing to w, at a record boundary: used to
// reopen --flows-out after logrotate moved it (SIGHUP).
func (f *FlowsJSON) Switch(w io.Writer, closer io.Closer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.w.Flush()
	if f.closer != nil {
		err = errors.Join(err, f.closer.Close())
	}
	f.w.Reset(w)
	f.closer = closer
	if err != nil {
		return fmt.Errorf("switch flows output: %w", err)
	}
	return nil
}

// Blocks writes packet blocks to segment files in a directory (see
// block.DirWriter). Records are ignored.
type Blocks struct{ w *block.DirWriter }

// NewBlocks opens a block directory writer.
func NewBlocks(cfg block.DirWriterConfig) (*Blocks, error) {
	w, err := block.NewDirWriter(cfg)
	if err != nil {
		return nil, err
	}
	return &Blocks{w: w}, nil
}

// AddRecord ignores the record.
func (b *Blocks) AddRecord(*flow.Record) error { return nil }

// AddBlock appends the block to the current segment file.
func (b *Blocks) AddBlock(encoded []byte) error { return b.w.Write(encoded) }

// Stats returns the writer's counters.
func (b *Blocks) Stats() block.DirWriterStats { return b.w.Stats() }

// Close syncs and closes the segment file.
func (b *Blocks) Close() error { return b.w.Close() }

// Multi hands everything to several sinks, in order. It returns the first
// error but always tries every sink, so one failing output does not starve
// the others.
type Multi []Sink

// AddRecord implements Sink.
func (m Multi) AddRecord(rec *flow.Record) error {
	var first error
	for _, s := range m {
		if err := s.AddRecord(rec); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// AddBlock implements Sink.
func (m Multi) AddBlock(encoded []byte) error {
	var first error
	for _, s := range m {
		if err := s.AddBlock(encoded); err != nil && first == nil {
			first = err
		}
	}
	return first
}
