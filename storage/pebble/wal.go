package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	iofs "io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// WAL recovery policies (Config.WALRecovery).
const (
	// WALStrict refuses to open a store whose write-ahead log is damaged
	// before its end: Pebble would stop replaying at the damage and drop
	// every batch after it, batches the collector acknowledged and the
	// sensors then deleted from their spools.
	WALStrict = "strict"
	// WALSalvage keeps a copy of the damaged log under damaged-wal/,
	// rewrites the log without the damaged records (every intact batch
	// before and after the damage is kept), logs at error level exactly
	// what was dropped, and opens the store.
	WALSalvage = "salvage"
)

// ErrWALDamaged: a write-ahead log is damaged before its end (and the
// policy is strict). It wraps storage.ErrCorrupt.
var ErrWALDamaged = fmt.Errorf("%w: write-ahead log damaged", storage.ErrCorrupt)

const (
	walBlockSize      = 32 << 10
	walLegacyHeader   = 7
	walRecycleHeader  = 11
	walFirstRecycled  = 5 // chunk types 5..8 carry the log number
	walChunkFull      = 1
	walChunkFirst     = 2
	walChunkMiddle    = 3
	walChunkLast      = 4
	walBatchHeaderLen = 12
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// walCRC is Pebble's masked CRC-32C of a chunk.
func walCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// walRecord is one intact record (one Pebble batch) of a log.
type walRecord struct {
	off  int64
	data []byte
}

// walDamage is a stretch of a log that holds no intact record although
// intact records follow it: data the collector acknowledged and Pebble
// would silently drop.
type walDamage struct {
	from, to int64 // byte offsets in the file
	// head is the start of the damaged record when its first chunk is
	// intact: its batch header names the sequence numbers lost.
	head []byte
}

// walScan is what reading one log found.
type walScan struct {
	records []walRecord
	damage  []walDamage
	// tail is an incomplete or unreadable last record (nil: the log ends
	// cleanly). A crash or a full disk leaves one, and that batch was
	// never acknowledged; it is logged all the same, since damage to the
	// last record looks alike.
	tail *walDamage
}

// chunkAt parses the chunk at b[i:end] of log logNum: its type (1..4),
// payload and total size. ok is false when no intact chunk of this log
// starts at i; stale is true when one of another (recycled) log does.
func chunkAt(b []byte, i, end int, logNum uint32) (typ byte, payload []byte, size int, ok, stale bool) {
	if i+walLegacyHeader > end {
		return 0, nil, 0, false, false
	}
	sum := binary.LittleEndian.Uint32(b[i:])
	n := int(binary.LittleEndian.Uint16(b[i+4:]))
	typ = b[i+6]
	hs := walLegacyHeader
	if typ >= walFirstRecycled && typ <= walFirstRecycled+3 {
		hs = walRecycleHeader
		if i+hs > end {
			return 0, nil, 0, false, false
		}
		if binary.LittleEndian.Uint32(b[i+7:]) != logNum {
			stale = true
		}
		typ -= walFirstRecycled - 1
	} else if typ < walChunkFull || typ > walChunkLast {
		return 0, nil, 0, false, false
	}
	if i+hs+n > end || walCRC(b[i+6:i+hs+n]) != sum {
		return 0, nil, 0, false, false
	}
	if stale {
		return 0, nil, 0, false, true
	}
	return typ, b[i+hs : i+hs+n], hs + n, true, false
}

// scanWAL reads a whole log: its intact records, and the damaged
// stretches followed by intact records of the same log. A log that just
// ends (zeroes, a torn last record, chunks of a recycled log) is not
// damaged: that is how a crash or a full disk leaves the tail, and
// nothing after it was acknowledged.
func scanWAL(b []byte, logNum uint32) walScan {
	r := walReader{badFrom: -1}
	for blk := 0; blk < len(b); blk += walBlockSize {
		end := min(blk+walBlockSize, len(b))
		for i := blk; i+walLegacyHeader <= end; {
			typ, payload, size, ok, stale := chunkAt(b, i, end, logNum)
			if stale {
				// A recycled log's old contents: this log ends here.
				r.endAt(int64(i))
				return r.sc
			}
			if !ok {
				if isZero(b[i:end]) {
					break // preallocated or unwritten: the rest of the block is empty
				}
				r.damaged(int64(i))
				i++ // resynchronise: look for the next intact chunk
				continue
			}
			r.chunk(typ, payload, int64(i))
			i += size
		}
	}
	r.endAt(int64(len(b)))
	return r.sc
}

// walReader is scanWAL's state: the record being reassembled from its
// chunks and the damaged stretch being measured.
type walReader struct {
	sc     walScan
	cur    []byte // the record being reassembled
	curOff int64  // its offset
	inRec  bool   // a First chunk started it and no Last ended it yet
	// badFrom is the start of the current damaged stretch (-1: none),
	// badHead the start of the damaged record when its first chunk is
	// intact.
	badFrom int64
	badHead []byte
}

// mark starts a damaged stretch at at, unless one is open.
func (r *walReader) mark(at int64) {
	if r.badFrom < 0 {
		r.badFrom = at
		if r.inRec && at == r.curOff && len(r.cur) >= walBatchHeaderLen {
			r.badHead = slices.Clone(r.cur[:walBatchHeaderLen])
		}
	}
}

// good ends the open damaged stretch, if any, at at.
func (r *walReader) good(at int64) {
	if r.badFrom >= 0 {
		r.sc.damage = append(r.sc.damage, walDamage{from: r.badFrom, to: at, head: r.badHead})
		r.badFrom, r.badHead = -1, nil
	}
}

// damaged takes a byte at at where no intact chunk starts: the record
// being reassembled, if any, is damaged from its start.
func (r *walReader) damaged(at int64) {
	if r.inRec {
		r.mark(r.curOff)
		r.inRec = false
		return
	}
	r.mark(at)
}

// chunk takes the intact chunk of type typ at at.
func (r *walReader) chunk(typ byte, payload []byte, at int64) {
	switch typ {
	case walChunkFull, walChunkFirst:
		if r.inRec {
			r.mark(r.curOff) // a record whose end is missing
		}
		r.good(at)
		r.cur, r.curOff, r.inRec = append(r.cur[:0], payload...), at, typ == walChunkFirst
		if typ == walChunkFull {
			r.sc.records = append(r.sc.records, walRecord{off: r.curOff, data: slices.Clone(r.cur)})
		}
	default: // middle, last
		if !r.inRec {
			r.mark(at) // the rest of a record whose start is damaged
			return
		}
		r.cur = append(r.cur, payload...)
		if typ == walChunkLast {
			r.sc.records = append(r.sc.records, walRecord{off: r.curOff, data: slices.Clone(r.cur)})
			r.inRec = false
		}
	}
}

// endAt records an unfinished record or unreadable stretch at the end of
// the log as its tail.
func (r *walReader) endAt(end int64) {
	switch {
	case r.badFrom >= 0:
		r.sc.tail = &walDamage{from: r.badFrom, to: end, head: r.badHead}
	case r.inRec:
		d := &walDamage{from: r.curOff, to: end}
		if len(r.cur) >= walBatchHeaderLen {
			d.head = slices.Clone(r.cur[:walBatchHeaderLen])
		}
		r.sc.tail = d
	}
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// batchSummary names what a Pebble batch held: its sequence numbers and
// the (sensor, seq) batches it acknowledged (their dedupe markers).
func batchSummary(repr []byte) (seq uint64, count uint32, acked []string) {
	if len(repr) < walBatchHeaderLen {
		return 0, 0, nil
	}
	seq = binary.LittleEndian.Uint64(repr)
	r, count := pebble.ReadBatch(repr)
	for {
		_, ukey, _, ok, err := r.Next()
		if !ok || err != nil {
			break
		}
		if len(ukey) > 0 && rowkey.Table(ukey[0]) == rowkey.TableDedupe {
			if sensor, s, err := rowkey.DecodeDedupeKey(ukey[1:]); err == nil {
				acked = append(acked, sensor+"/"+strconv.FormatUint(s, 10))
			}
		}
	}
	return seq, count, acked
}

// walFile is a log file of the store with its number.
type walFile struct {
	name string
	num  uint64
}

// listWALs returns the store's log files in number order.
func listWALs(fs vfs.FS, dir string) ([]walFile, error) {
	names, err := fs.List(dir)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil, nil // a new store
		}
		return nil, err
	}
	var out []walFile
	for _, n := range names {
		base, ok := strings.CutSuffix(n, ".log")
		if !ok {
			continue
		}
		num, err := strconv.ParseUint(base, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, walFile{name: n, num: num})
	}
	slices.SortFunc(out, func(a, b walFile) int { return int(a.num) - int(b.num) })
	return out, nil
}

// checkWAL reads every log before Pebble replays it. A log damaged
// before its end is refused (WALStrict) or salvaged (WALSalvage); see
// Config.WALRecovery.
func (s *Store) checkWAL() error {
	wals, err := listWALs(s.fs, s.dir)
	if err != nil {
		return fmt.Errorf("list write-ahead logs: %w", err)
	}
	for _, w := range wals {
		path := s.fs.PathJoin(s.dir, w.name)
		b, err := readAll(s.fs, path)
		if err != nil {
			return fmt.Errorf("read write-ahead log %s: %w", path, err)
		}
		sc := scanWAL(b, uint32(w.num))
		if sc.tail != nil && !isZero(b[sc.tail.from:sc.tail.to]) {
			s.log.Warn("write-ahead log ends in an incomplete record, which replay drops: a crash or a full disk "+
				"leaves one (that batch was never acknowledged); otherwise it is damage",
				"file", path, "tail", describeTail(sc))
		}
		if len(sc.damage) == 0 {
			continue
		}
		s.integrity.corruption.WithLabelValues("wal").Inc()
		report := describeDamage(sc)
		if s.cfg.WALRecovery != WALSalvage {
			s.log.Error("write-ahead log damaged; the store is not opened", "file", path, "damage", report)
			return fmt.Errorf("%w: %s: %s; acknowledged batches after it would be lost, so the store was not opened "+
				"(to keep every intact batch and drop only the damaged ones, start once with --salvage-wal, "+
				"or set store.pebble.wal_recovery: salvage)", ErrWALDamaged, path, report)
		}
		if err := s.salvageWAL(path, b, sc); err != nil {
			return fmt.Errorf("salvage write-ahead log %s: %w", path, err)
		}
		s.log.Error("write-ahead log damaged: salvaged; the damaged records are lost", "file", path, "damage", report,
			"kept_records", len(sc.records), "copy", filepath.Join(s.dir, "damaged-wal"))
	}
	return nil
}

// describeDamage says where a log is damaged and what that loses: the
// byte ranges, the Pebble sequence numbers missing between the intact
// batches around each, and the sensor batches (sensor/seq) those intact
// neighbours acknowledged, which bracket the lost ones.
func describeDamage(sc walScan) string {
	var parts []string
	for _, d := range sc.damage {
		var before, after *walRecord
		for i := range sc.records {
			r := &sc.records[i]
			if r.off < d.from {
				before = r
			} else if after == nil && r.off >= d.to {
				after = r
			}
		}
		p := fmt.Sprintf("bytes %d..%d", d.from, d.to)
		var lostFrom uint64
		var prev []string
		if before != nil {
			seq, n, acked := batchSummary(before.data)
			lostFrom, prev = seq+uint64(n), acked
		} else if len(d.head) == walBatchHeaderLen {
			lostFrom = binary.LittleEndian.Uint64(d.head)
		}
		if after != nil {
			seq, _, acked := batchSummary(after.data)
			if lostFrom > 0 && seq > lostFrom {
				p += fmt.Sprintf(", %d keys lost (pebble seqnums %d..%d)", seq-lostFrom, lostFrom, seq-1)
			}
			p += fmt.Sprintf(", between the sensor batches %v and %v", prev, acked)
		} else if len(d.head) == walBatchHeaderLen {
			n := binary.LittleEndian.Uint32(d.head[8:])
			p += fmt.Sprintf(", %d keys lost (pebble seqnums %d..%d), after the sensor batches %v", n, lostFrom, lostFrom+uint64(n)-1, prev)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// describeTail says where a log's incomplete last record lies and, when
// its header is readable, which sequence numbers it held.
func describeTail(sc walScan) string {
	d := sc.tail
	p := fmt.Sprintf("bytes %d..%d", d.from, d.to)
	if len(d.head) == walBatchHeaderLen {
		seq, n := binary.LittleEndian.Uint64(d.head), binary.LittleEndian.Uint32(d.head[8:])
		p += fmt.Sprintf(", %d keys (pebble seqnums %d..%d)", n, seq, seq+uint64(n)-1)
	}
	if len(sc.records) > 0 {
		_, _, acked := batchSummary(sc.records[len(sc.records)-1].data)
		p += fmt.Sprintf(", after the sensor batches %v", acked)
	}
	return p
}

// salvageWAL copies the damaged log aside, then replaces it, atomically,
// by a log of its intact records only.
func (s *Store) salvageWAL(path string, orig []byte, sc walScan) error {
	dir := s.fs.PathJoin(s.dir, "damaged-wal")
	if err := s.fs.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	copyPath := s.fs.PathJoin(dir, fmt.Sprintf("%s.%d", filepath.Base(path), time.Now().Unix()))
	if err := writeFileSync(s.fs, copyPath, orig); err != nil {
		return err
	}
	var logNum uint64
	if _, err := fmt.Sscanf(filepath.Base(path), "%d.log", &logNum); err != nil {
		return err
	}
	tmp := path + ".salvage"
	if err := writeFileSync(s.fs, tmp, encodeWAL(sc.records, uint32(logNum))); err != nil {
		return err
	}
	if err := s.fs.Rename(tmp, path); err != nil {
		return err
	}
	d, err := s.fs.OpenDir(s.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// encodeWAL writes records as Pebble's log writer does, in the
// recyclable chunk format that carries the log number (so that no chunk
// of it can be mistaken for a later log's if Pebble recycles the file).
func encodeWAL(recs []walRecord, logNum uint32) []byte {
	var out []byte
	for _, r := range recs {
		p, first := r.data, true
		for {
			room := walBlockSize - len(out)%walBlockSize
			if room < walRecycleHeader {
				out = append(out, make([]byte, room)...)
				continue
			}
			n := min(len(p), room-walRecycleHeader)
			last := n == len(p)
			typ := byte(walChunkMiddle)
			switch {
			case first && last:
				typ = walChunkFull
			case first:
				typ = walChunkFirst
			case last:
				typ = walChunkLast
			}
			var h [walRecycleHeader]byte
			binary.LittleEndian.PutUint16(h[4:], uint16(n))
			h[6] = typ + walFirstRecycled - 1
			binary.LittleEndian.PutUint32(h[7:], logNum)
			chunk := append(h[:], p[:n]...)
			binary.LittleEndian.PutUint32(chunk[0:], walCRC(chunk[6:]))
			out = append(out, chunk...)
			p, first = p[n:], false
			if last {
				break
			}
		}
	}
	return out
}

func readAll(fs vfs.FS, path string) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func writeFileSync(fs vfs.FS, path string, b []byte) error {
	f, err := fs.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
