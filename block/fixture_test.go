package block

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// updateFixture rewrites testdata/segments-v1.golden from the fixture
// segments. Only for a deliberate change: the fixture and its golden
// listing were written by the segment code as it was before the segment
// files moved onto package segfile, and the point of the test is that
// today's reader still reads them the same.
var updateFixture = flag.Bool("update-fixture", false, "rewrite testdata/segments-v1.golden")

// TestReadFixtureSegments reads block segments written by
// `tapir-sensor -r zeek/wikipedia.pcap --blocks-out` and
// `tapir-sensor -r zeek/get.pcap --blocks-out` (version 1 segments, made
// before package segfile existed) and compares every block with the
// listing made then.
func TestReadFixtureSegments(t *testing.T) {
	var lines []string
	st, err := ReadDir(filepath.Join("testdata", "segments-v1"), func(m Meta, b *Block) error {
		lines = append(lines, fixtureLine(m, b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Damaged() || st.Segments != 2 || st.Blocks != len(lines) {
		t.Fatalf("read stats %+v", st)
	}
	got := strings.Join(lines, "")
	golden := filepath.Join("testdata", "segments-v1.golden")
	if *updateFixture {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("fixture segments read differently:\n%s\nwant:\n%s", got, want)
	}
}

// fixtureLine describes one block: its Meta and a digest of its body.
func fixtureLine(m Meta, b *Block) string {
	return fmt.Sprintf("%s %x seq=%d pkts=%d bytes=%d first=%d last=%d link=%d sensor=%s sha256=%x\n",
		m.CommunityID, m.FlowID, m.Seq, m.Packets, m.Bytes, m.First, m.Last, m.LinkType, m.SensorID, sha256.Sum256(b.Body()))
}
