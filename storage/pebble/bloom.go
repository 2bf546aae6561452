package pebble

import (
	"bufio"
	"fmt"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// bloomPolicy: one bloom filter per sstable, 10 bits per prefix (about 1%
// false positives). Point reads of absent keys (dedupe markers, new flow
// refs, new records) and prefix seeks of flows an sstable does not hold
// (see prefixComparer) skip the sstable without reading its index or data.
var bloomPolicy = bloom.FilterPolicy(10)

// comparerName names prefixComparer in the store's manifest. Pebble
// refuses to open a store with another comparer name, which is what keeps
// sstables whose filters hold whole keys (stores created before the
// prefix comparer) from being read with prefix filters.
const comparerName = "tapir.prefix.v1"

// legacyComparerName is Pebble's default comparer, which stores created
// before prefixComparer use (bytewise order, filters on whole keys).
var legacyComparerName = pebble.DefaultComparer.Name

// prefixComparer orders keys bytewise, as Pebble's default comparer does,
// and declares the prefix that sstable bloom filters hold:
//
//   - block rows (TableBlocks): table byte + flow prefix (salt, canonical
//     flow key), the part every block of a flow shares;
//   - Community ID index rows (TableCommunity): table byte + Community ID
//     hash, the part every instance of a Community ID shares (short rows,
//     TableCommunityHash: table byte + the hash's first 8 bytes);
//   - every other key: the whole key (point reads, as before).
//
// So a retrieval's two prefix scans (LookupFlow's Community ID scan and
// ScanBlocks' flow scan), done with SeekPrefixGE, skip every sstable whose
// filter does not hold the flow instead of reading an index and a data
// block in each level: their cost stays flat as the LSM grows levels.
// Byte order is unchanged, so the split is valid in Pebble's sense: a
// prefix is a byte prefix of a fixed length per table, and keys ordered
// bytewise have prefixes ordered bytewise.
var prefixComparer = func() *pebble.Comparer {
	c := *pebble.DefaultComparer
	c.Split = splitKey
	c.Name = comparerName
	return &c
}()

func splitKey(k []byte) int {
	if len(k) == 0 {
		return 0
	}
	var n int
	switch rowkey.Table(k[0]) {
	case rowkey.TableBlocks:
		n = 1 + rowkey.FlowPrefixLen
	case rowkey.TableCommunity:
		n = 1 + rowkey.CommunityLen
	case rowkey.TableCommunityHash:
		n = 1 + rowkey.CommunityHashLen
	default:
		return len(k)
	}
	return min(n, len(k))
}

// storeRows returns the comparer and the merger an existing store in dir
// was created with (its newest OPTIONS file names them), or
// prefixComparer and orderedRefMerger for a new store. A store created with
// Pebble's default comparer keeps it: its sstables' filters hold whole
// keys, so it must not be read with prefix filters; retrievals on it scan
// without them (correct, slower as it grows). A store created with
// Pebble's default merger keeps it, and its writes read before they write
// (see refMerger); one created with refMerger keeps it and its salted
// flow ID rows.
func storeRows(fs vfs.FS, dir string) (*pebble.Comparer, *pebble.Merger, error) {
	comparer, merger, found, err := readStoreOptions(fs, dir)
	if err != nil || !found {
		return prefixComparer, orderedRefMerger, err
	}
	var c *pebble.Comparer
	switch comparer {
	case "", comparerName: // no comparer line: as before, the prefix comparer
		c = prefixComparer
	case legacyComparerName:
		c = pebble.DefaultComparer
	default:
		return nil, nil, fmt.Errorf("%w: pebble comparer %q", ErrLayout, comparer)
	}
	switch merger {
	case "", legacyMergerName: // no merger line: Pebble's default
		return c, pebble.DefaultMerger, nil
	case mergerName:
		return c, refMerger, nil
	case orderedMergerName:
		return c, orderedRefMerger, nil
	}
	return nil, nil, fmt.Errorf("%w: pebble merger %q", ErrLayout, merger)
}

// readStoreOptions returns the comparer and merger names the newest
// OPTIONS file in dir gives ("" for a name it lacks), and whether there
// is one (none: a new store).
func readStoreOptions(fs vfs.FS, dir string) (comparer, merger string, found bool, err error) {
	names, err := fs.List(dir)
	if err != nil {
		return "", "", false, nil // no directory yet: a new store
	}
	var opts []string
	for _, n := range names {
		if strings.HasPrefix(n, "OPTIONS-") {
			opts = append(opts, n)
		}
	}
	if len(opts) == 0 {
		return "", "", false, nil
	}
	slices.Sort(opts) // OPTIONS-NNNNNN: zero-padded, newest last
	f, err := fs.Open(fs.PathJoin(dir, opts[len(opts)-1]))
	if err != nil {
		return "", "", false, fmt.Errorf("read pebble options: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "comparer="); ok {
			comparer = v
		} else if v, ok := strings.CutPrefix(line, "merger="); ok {
			merger = v
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", false, fmt.Errorf("read pebble options: %w", err)
	}
	return comparer, merger, true, nil
}
