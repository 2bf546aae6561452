package searchindex

import (
	"context"
	"strings"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
)

// retentionEvery is how often expired daily indices are looked for.
const retentionEvery = time.Hour

// runRetention deletes expired daily indices at start and every hour.
func (ix *Indexer) runRetention(ctx context.Context) {
	if ix.cfg.RetentionDays == 0 {
		return
	}
	t := time.NewTicker(retentionEvery)
	defer t.Stop()
	for {
		ix.deleteExpired(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// expired returns the daily indices among names whose day ended more than
// retention_days before now. Names that are not <prefix>YYYY.MM.DD stay.
func (ix *Indexer) expired(names []string, now time.Time) []string {
	cutoff := now.UTC().AddDate(0, 0, -ix.cfg.RetentionDays)
	var out []string
	for _, n := range names {
		day, ok := strings.CutPrefix(n, ix.cfg.IndexPrefix)
		if !ok {
			continue
		}
		t, err := time.Parse("2006.01.02", day)
		if err != nil {
			continue
		}
		if t.AddDate(0, 0, 1).Before(cutoff) {
			out = append(out, n)
		}
	}
	return out
}

// deleteExpired lists the daily indices and deletes the expired ones.
func (ix *Indexer) deleteExpired(ctx context.Context, now time.Time) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := ix.os.Cat.Indices(ctx, &opensearchapi.CatIndicesReq{Indices: []string{ix.cfg.IndexPrefix + "*"}})
	if err != nil {
		if ctx.Err() == nil {
			ix.log.Warn("retention: listing indices failed; next try in an hour", "err", err)
		}
		return
	}
	names := make([]string, 0, len(resp.Indices))
	for _, i := range resp.Indices {
		names = append(names, i.Index)
	}
	old := ix.expired(names, now)
	if len(old) == 0 {
		return
	}
	if _, err := ix.os.Indices.Delete(ctx, opensearchapi.IndicesDeleteReq{Indices: old}); err != nil {
		ix.log.Warn("retention: deleting expired indices failed; next try in an hour", "indices", old, "err", err)
		return
	}
	ix.m.deleted.Add(float64(len(old)))
	ix.log.Info("retention: deleted expired daily indices", "indices", old, "retention_days", ix.cfg.RetentionDays)
}
