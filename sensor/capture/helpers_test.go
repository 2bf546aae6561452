package capture

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testdata"
)

// captureFiles lists every capture under the shared pcaps, recursively.
func captureFiles(t testing.TB) []string {
	t.Helper()
	root := testdata.Pcaps(t)
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		switch filepath.Ext(p) {
		case ".pcap", ".pcapng", ".gz", ".cap":
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no captures under %s", root)
	}
	return files
}
