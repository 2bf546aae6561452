package searchindex

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// run polls the flows topic, indexes each poll's records and commits their
// offsets, until ctx ends.
func (ix *Indexer) run(ctx context.Context) {
	lag := map[int32]int64{}
	var lastGroupLag time.Time
	for ctx.Err() == nil {
		fetches := ix.kc.PollRecords(ctx, ix.cfg.BulkMaxRecords)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return
		}
		failed := false
		fetches.EachError(func(topic string, p int32, err error) {
			failed = true
			if held, ok := ix.retryLog.Allow(); ok {
				ix.log.Warn("kafka fetch failed; retrying", "topic", topic, "partition", p, "err", err, "held_back", held)
			}
		})
		recs := fetches.Records()
		if len(recs) == 0 {
			if failed && !sleep(ctx, ix.cfg.RetryMin) {
				return // Kafka unreachable: do not spin
			}
			continue
		}
		ix.setLag(fetches, lag, true)
		if time.Since(lastGroupLag) >= groupLagEvery {
			ix.setGroupLag(ctx)
			lastGroupLag = time.Now()
		}
		if !ix.indexAll(ctx, recs) {
			return // stopping: nothing committed, the records come again
		}
		if ix.commit(ctx, recs) {
			ix.setLag(fetches, lag, false)
		}
	}
}

// groupLagEvery bounds how often run asks Kafka for the consumer group's
// lag (an admin round trip): at most once a second.
const groupLagEvery = time.Second

// commitTimeout bounds the offset commit of records already indexed.
const commitTimeout = 10 * time.Second

// commit commits recs' offsets and reports whether Kafka took them. The
// records are indexed by now, so the commit is finished even when ctx
// ends meanwhile (a Stop right after a bulk would otherwise leave them to
// be indexed a second time by the next indexer); it is bounded by
// commitTimeout. The lag gauge drops only after it, so lag 0 means
// committed.
func (ix *Indexer) commit(ctx context.Context, recs []*kgo.Record) bool {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := ix.kc.CommitRecords(cctx, recs...); err != nil {
		ix.m.commitErrs.Inc()
		ix.log.Warn("kafka offset commit failed; the records will be indexed again", "err", err)
		return false
	}
	return true
}

// setLag updates the lag gauge from the fetches' high watermarks: the
// records from the poll's first one on while they are being indexed
// (pending; a bulk retried through an OpenSearch outage shows as lag),
// those after its last one once it is done.
func (ix *Indexer) setLag(fetches kgo.Fetches, lag map[int32]int64, pending bool) {
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		n := len(p.Records)
		switch {
		case n == 0:
		case pending:
			lag[p.Partition] = max(0, p.HighWatermark-p.Records[0].Offset)
		default:
			lag[p.Partition] = max(0, p.HighWatermark-p.Records[n-1].Offset-1)
		}
	})
	var sum int64
	for _, v := range lag {
		sum += v
	}
	ix.m.lag.Set(float64(sum))
}

// indexAll writes recs in bulk requests of at most bulk_max_records and
// bulk_max_bytes, retrying until each is done; false when ctx ended first.
func (ix *Indexer) indexAll(ctx context.Context, recs []*kgo.Record) bool {
	docs := make([]doc, 0, len(recs))
	for _, r := range recs {
		d, err := ix.makeDoc(r)
		if err != nil {
			ix.drop("decode", err.Error(), r)
			continue
		}
		docs = append(docs, d)
	}
	for len(docs) > 0 {
		n, size := 0, 0
		for n < len(docs) && (n == 0 || size+docs[n].size() <= ix.cfg.BulkMaxBytes) {
			size += docs[n].size()
			n++
		}
		if !ix.indexChunk(ctx, docs[:n]) {
			return false
		}
		docs = docs[n:]
	}
	return true
}

// indexChunk sends one bulk request and retries what failed for a
// transient reason, with backoff, until nothing is left; false when ctx
// ended first.
func (ix *Indexer) indexChunk(ctx context.Context, pending []doc) bool {
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 0 && !sleep(ctx, ix.backoff(attempt)) {
			return false
		}
		retry, err := ix.bulk(ctx, pending)
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			ix.m.retries.WithLabelValues("request").Inc()
			if held, ok := ix.retryLog.Allow(); ok {
				ix.log.Warn("opensearch bulk request failed; retrying", "docs", len(pending), "attempt", attempt+1, "err", err, "held_back", held)
			}
			continue
		}
		if len(retry) > 0 {
			ix.m.retries.WithLabelValues("document").Add(float64(len(retry)))
		}
		pending = retry
	}
	return true
}

// backoff is the wait before retry attempt (1, 2, ...): retry_min doubled
// per attempt up to retry_max, with up to 50 % jitter off.
func (ix *Indexer) backoff(attempt int) time.Duration {
	d := ix.cfg.RetryMin
	for i := 1; i < attempt && d < ix.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, ix.cfg.RetryMax)
	return d - time.Duration(rand.Int64N(int64(d)/2+1))
}

// sleep waits d or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// drop counts and logs (rate-limited) a record that will never be indexed.
func (ix *Indexer) drop(reason, detail string, r *kgo.Record) {
	ix.m.dropped.WithLabelValues(reason).Inc()
	if held, ok := ix.dropLog.Allow(); ok {
		ix.log.Error("flow record not indexed (dropped)", "reason", reason, "detail", detail,
			"partition", r.Partition, "offset", r.Offset, "held_back", held)
	}
}

// setGroupLag sets the lag gauge to the records of the flows topic the
// consumer group has not committed, over every partition: a poll holds
// records of only the partitions whose fetches had arrived, so the lag
// setLag derives from it misses the others while a bulk is retried
// through an OpenSearch outage. On an error (Kafka unreachable) the gauge
// keeps setLag's value.
func (ix *Indexer) setGroupLag(ctx context.Context) {
	lags, err := kadm.NewClient(ix.kc).Lag(ctx, ix.cfg.ConsumerGroup)
	if err != nil {
		return
	}
	l, ok := lags[ix.cfg.ConsumerGroup]
	if !ok || l.Error() != nil {
		return
	}
	ix.m.lag.Set(float64(l.Lag.TotalByTopic()[ix.src.Topic].Lag))
}
