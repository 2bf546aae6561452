package segfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// List returns the paths of the files in dir named prefix, then decimal
// numbers separated by '-', then ext (as "blocks-1700000000-3.tblk" or
// "seg-00000000000000000042.spool"), ordered by those numbers compared
// as numbers, field by field: creation order for names made of a time
// and a counter or of a first sequence number. Files with the prefix and
// extension whose middle is not such numbers are listed first, by name,
// so that a reader can count what it cannot read.
func List(dir, prefix, ext string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	type seg struct {
		name string
		nums []uint64 // nil when the name holds no numbers
	}
	var segs []seg
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasPrefix(n, prefix) || !strings.HasSuffix(n, ext) || len(n) < len(prefix)+len(ext) {
			continue
		}
		segs = append(segs, seg{name: n, nums: nameNumbers(n[len(prefix) : len(n)-len(ext)])})
	}
	slices.SortFunc(segs, func(a, b seg) int {
		if (a.nums == nil) != (b.nums == nil) {
			if a.nums == nil {
				return -1
			}
			return 1
		}
		if c := slices.Compare(a.nums, b.nums); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = filepath.Join(dir, s.name)
	}
	return out, nil
}

// nameNumbers parses "12-3" as [12 3]; nil if s is not such numbers.
func nameNumbers(s string) []uint64 {
	var nums []uint64
	for f := range strings.SplitSeq(s, "-") {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil
		}
		nums = append(nums, n)
	}
	return nums
}

// Remove deletes a whole segment; one already gone is not an error.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove segment: %w", err)
	}
	return nil
}
