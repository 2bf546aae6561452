package flowinput

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestRecordDatagrams records the datagrams softflowd sends for a shared
// capture (NetFlow v5, v9, IPFIX) into testdata/, the seeds of
// FuzzDatagram and the input of the benchmark. Run it with
// TAPIR_RECORD_DATAGRAMS=1; otherwise it only checks the files exist.
func TestRecordDatagrams(t *testing.T) {
	if os.Getenv("TAPIR_RECORD_DATAGRAMS") != "1" {
		for _, v := range []int{5, 9, 10} {
			if len(recorded(t, fmt.Sprintf("softflowd-echo-v%d.bin", v))) == 0 {
				t.Fatalf("no recorded v%d datagrams", v)
			}
		}
		return
	}
	pcap := testenv.Plain(t, testenv.Pcap(t, "zeek/echo-connections.pcap.gz"))
	for _, v := range []int{5, 9, 10} {
		dgs := recordSoftflowd(t, pcap, v)
		var raw []byte
		for _, d := range dgs {
			raw = binary.BigEndian.AppendUint32(raw, uint32(len(d)))
			raw = append(raw, d...)
		}
		if err := os.WriteFile(filepath.Join("testdata", "softflowd-echo-v"+strconv.Itoa(v)+".bin"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("v%d: %d datagrams", v, len(dgs))
	}
}
