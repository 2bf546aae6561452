package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// privateUmask is set at process start: every file and directory the
// collector (Pebble, the audit log, enrichment state, flow templates)
// creates is readable by its owner only (0600 files, 0700 directories),
// whatever umask the collector was started with. Packets hold people's
// data.
const privateUmask = 0o077

// setPrivateUmask makes files created from now on private. The umask is
// process wide, so it also covers files third-party code (Pebble) opens
// with 0666/0755.
func setPrivateUmask() { syscall.Umask(privateUmask) }

// tightenTree removes group and other permissions from dir and from every
// file and directory under it, for stores created by an older version or
// under a looser umask. A missing dir is not an error.
func tightenTree(dir string) error {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(path, perm&^0o077); err != nil {
				return fmt.Errorf("tighten permissions: %w", err)
			}
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
