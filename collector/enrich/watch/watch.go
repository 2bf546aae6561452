// Package watch reloads data files when they change on disk. It polls each
// file's size and modification time (no inotify, so it works the same on
// any file system, including bind mounts and files replaced by rename) and
// calls a load function when any changed. A failed load is counted and
// logged, and the caller keeps its previous data: load must only swap in
// new data once it parsed completely.
package watch

import (
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Watcher polls files and calls its load function on change. New is inert;
// Start launches the polling goroutine; Stop is idempotent and waits.
// Check may be called from any goroutine (it is serialized internally).
type Watcher struct {
	paths    []string
	interval time.Duration
	load     func() error
	log      *slog.Logger

	mu     sync.Mutex
	stamps []stamp

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	started  bool

	// Reloads counts successful reloads; Failures counts failed ones.
	Reloads, Failures atomic.Uint64
}

type stamp struct {
	size  int64
	mtime time.Time
	ok    bool
}

// New returns a watcher of paths. The current state of the files is taken
// as loaded: call it right after the first successful load.
func New(paths []string, interval time.Duration, load func() error, log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{paths: paths, interval: interval, load: load, log: log, stop: make(chan struct{})}
	w.stamps = w.current()
	return w
}

func (w *Watcher) current() []stamp {
	s := make([]stamp, len(w.paths))
	for i, p := range w.paths {
		if fi, err := os.Stat(p); err == nil {
			s[i] = stamp{size: fi.Size(), mtime: fi.ModTime(), ok: true}
		}
	}
	return s
}

// Check reloads if any file changed since the last check. It returns
// whether a reload was attempted and its error. A file that disappeared
// (in the middle of a replacement) is not a change: the next check sees
// the new one.
func (w *Watcher) Check() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.current()
	changed := false
	for i := range now {
		if now[i].ok && now[i] != w.stamps[i] {
			changed = true
		}
	}
	if !changed {
		return false, nil
	}
	// Remember the new stamps even when the load fails: a broken file is
	// reported once, not on every poll, and retried when it changes again.
	w.stamps = now
	if err := w.load(); err != nil {
		w.Failures.Add(1)
		w.log.Error("reload failed, keeping the previous data", "files", w.paths, "err", err)
		return true, err
	}
	w.Reloads.Add(1)
	w.log.Info("reloaded", "files", w.paths)
	return true, nil
}

// Start polls every interval (a non-positive interval disables polling).
func (w *Watcher) Start() {
	if w.interval <= 0 || w.started {
		return
	}
	w.started = true
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(w.interval)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				_, _ = w.Check() // Check counts and logs a failed reload
			}
		}
	}()
}

// Stop ends polling and waits for it.
func (w *Watcher) Stop() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.wg.Wait()
}
