package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestCollectorFilesPrivate starts the real collector under umask 022
// (as outside systemd) with a store directory an older version left
// world-readable, streams a capture, restarts it (Pebble writes its
// sstables, manifest and options at open) and checks that every file
// under the store and audit directories is 0600 and every directory
// 0700.
func TestCollectorFilesPrivate(t *testing.T) {
	needBinaries(t)
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	work := t.TempDir()
	p := newPKI(t, filepath.Join(work, "certs"), "demo-sensor")
	col := prepareCollector(t, filepath.Join(work, "collector"), p)
	col.audit = filepath.Join(work, "auditdir", "audit.jsonl")
	if err := os.MkdirAll(col.store, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(col.store, "left-by-an-older-version"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	col.start()
	file := testenv.Pcap(t, "zeek/get.pcap")
	mustRun(t, 60*time.Second, bin.sensor, append([]string{"-r", file}, col.sensorArgs("demo-sensor", filepath.Join(work, "spool"))...)...)
	if n := len(col.flows(t, "after 1362692500 and before 1362692600")); n != 1 {
		t.Fatalf("%d records, want 1", n)
	}
	col.proc.Stop(30 * time.Second)
	col.start()
	col.flows(t, "after 1362692500 and before 1362692600")

	seen := 0
	for _, root := range []string{col.store, filepath.Dir(col.audit)} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			}
			if info.Mode()&fs.ModeSymlink == 0 && info.Mode().Perm() != want {
				t.Errorf("%s: mode %v, want %v", path, info.Mode().Perm(), want)
			}
			seen++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if seen < 8 {
		t.Errorf("only %d files and directories checked", seen)
	}
}
