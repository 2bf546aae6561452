package publish

import (
	"context"

	"github.com/tapir-sensor/tapir/storage"
)

// publishingStore publishes a batch's flow records before writing the
// batch to the store it wraps.
type publishingStore struct {
	storage.BlockStore
	p *Publisher
}

// WrapStore returns a store whose Write first publishes the batch's flow
// records to Kafka (waiting for the acks) and only then writes the batch
// to s. A batch therefore becomes durable in the store, and counts in the
// durable sequence a reconnecting sensor is told, only after Kafka holds
// its flows: were it the other way round, a sensor reconnecting after a
// Kafka failure would learn its batch was durable and never resend the
// flows Kafka missed. A failure of either leaves the batch unacknowledged
// and the sensor resends it; a resend after Kafka acknowledged publishes
// the flows again (at least once, deduplicated downstream by flow id and
// segment). Every other method is s's.
func (p *Publisher) WrapStore(s storage.BlockStore) storage.BlockStore {
	return &publishingStore{BlockStore: s, p: p}
}

// Write implements storage.Writer.
func (w *publishingStore) Write(ctx context.Context, b *storage.Batch) (bool, error) {
	if b != nil && len(b.Records) > 0 {
		if err := w.p.PublishFlows(ctx, b.SensorID, b.Records); err != nil {
			return false, err
		}
	}
	return w.BlockStore.Write(ctx, b)
}
