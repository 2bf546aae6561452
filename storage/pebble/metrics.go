package pebble

import (
	"strconv"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
	"github.com/prometheus/client_golang/prometheus"
)

// readStats accumulates what the read path's iterators loaded, so that
// slow retrievals can be told apart: blocks found in the block cache,
// blocks read from files, and the time those reads took. Safe for
// concurrent use.
type readStats struct {
	blockBytes       atomic.Uint64 // index, filter and data blocks loaded
	blockBytesCached atomic.Uint64 // the part found in the block cache
	readNanos        atomic.Int64  // time spent reading blocks not in the cache
	iterators        atomic.Uint64
}

func (r *readStats) add(st pebble.IteratorStats) {
	r.iterators.Add(1)
	r.blockBytes.Add(st.InternalStats.BlockBytes)
	r.blockBytesCached.Add(st.InternalStats.BlockBytesInCache)
	r.readNanos.Add(int64(st.InternalStats.BlockReadDuration))
}

// pebbleCollector exports Pebble's own metrics (db.Metrics(), read on
// each scrape) and the read path's block statistics as tapir_pebble_*.
type pebbleCollector struct {
	s     *Store
	descs map[string]*prometheus.Desc
}

var pebbleMetricDefs = []struct {
	name, help string
	labels     []string
}{
	{"read_amp", "Read amplification: L0 sublevels plus non-empty levels below.", nil},
	{"level_files", "sstables per LSM level.", []string{"level"}},
	{"level_bytes", "Bytes of sstables per LSM level.", []string{"level"}},
	{"compactions_total", "Compactions completed.", nil},
	{"compactions_in_progress", "Compactions running now.", nil},
	{"compaction_debt_bytes", "Bytes Pebble estimates it must compact to bring every level within its target.", nil},
	{"flushes_total", "Memtable flushes completed.", nil},
	{"flushes_in_progress", "Memtable flushes running now.", nil},
	{"block_cache_bytes", "Bytes held in the block cache.", nil},
	{"block_cache_hits_total", "Block cache hits.", nil},
	{"block_cache_misses_total", "Block cache misses.", nil},
	{"filter_hits_total", "Bloom filter checks that skipped an sstable's data block.", nil},
	{"filter_misses_total", "Bloom filter checks that could not skip.", nil},
	{"read_iterators_total", "Iterators the read path (lookups, block and record scans) closed.", nil},
	{"read_block_bytes_total", "Bytes of sstable blocks the read path's iterators loaded, by whether the block cache held them.", []string{"cached"}},
	{"read_block_seconds_total", "Time the read path's iterators spent reading blocks that were not in the block cache.", nil},
	{"write_point_reads_total", "Rows writes read before writing them: every packet block's and flow record's (a resent block or a later report replaces the stored one), and, in a store created before merged flow refs, every flow's flow ID row.", nil},
}

func newPebbleCollector(s *Store) *pebbleCollector {
	c := &pebbleCollector{s: s, descs: map[string]*prometheus.Desc{}}
	for _, d := range pebbleMetricDefs {
		c.descs[d.name] = prometheus.NewDesc("tapir_pebble_"+d.name, d.help, d.labels, nil)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *pebbleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A closed store exports nothing.
func (c *pebbleCollector) Collect(ch chan<- prometheus.Metric) {
	m, ok := c.s.Metrics()
	if !ok {
		return
	}
	g := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v, labels...)
	}
	k := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, v, labels...)
	}
	g("read_amp", float64(m.ReadAmp()))
	for i := range m.Levels {
		l := strconv.Itoa(i)
		g("level_files", float64(m.Levels[i].NumFiles), l)
		g("level_bytes", float64(m.Levels[i].Size), l)
	}
	k("compactions_total", float64(m.Compact.Count))
	g("compactions_in_progress", float64(m.Compact.NumInProgress))
	g("compaction_debt_bytes", float64(m.Compact.EstimatedDebt))
	k("flushes_total", float64(m.Flush.Count))
	g("flushes_in_progress", float64(m.Flush.NumInProgress))
	g("block_cache_bytes", float64(m.BlockCache.Size))
	k("block_cache_hits_total", float64(m.BlockCache.Hits))
	k("block_cache_misses_total", float64(m.BlockCache.Misses))
	k("filter_hits_total", float64(m.Filter.Hits))
	k("filter_misses_total", float64(m.Filter.Misses))
	r := &c.s.reads
	k("read_iterators_total", float64(r.iterators.Load()))
	cached := r.blockBytesCached.Load()
	k("read_block_bytes_total", float64(cached), "true")
	k("read_block_bytes_total", float64(r.blockBytes.Load()-min(cached, r.blockBytes.Load())), "false")
	k("read_block_seconds_total", float64(r.readNanos.Load())/1e9)
	k("write_point_reads_total", float64(c.s.writeReads.Load()))
}

// Metrics returns Pebble's metrics (levels, compactions, caches); false
// when the store is closed or failed. Safe for concurrent use.
func (s *Store) Metrics() (*pebble.Metrics, bool) {
	db, err := s.acquire()
	if err != nil {
		return nil, false
	}
	defer s.release()
	return db.Metrics(), true
}
