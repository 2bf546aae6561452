// Package publish produces the collector's feeds to Apache Kafka with
// franz-go: every flow record (ECS JSON or protobuf) keyed by Community ID
// so a flow's reports stay on one partition, sensor health keyed by sensor
// ID, and alerts.
//
// The producer is idempotent with acknowledgements from all in-sync
// replicas and compressed batches. PublishFlows returns only when Kafka
// acknowledged every record of the call, so the collector acknowledges a
// sensor batch only after its flows are in Kafka and its blocks in the
// store. The delivery guarantee is at least once: a batch resent after a
// collector crash or a Kafka timeout is produced again, so consumers that
// need exactly once keep the newest record per (tapir.flow_id,
// tapir.segment) (also carried in the record headers flow_id and segment).
//
// A Publisher is safe for concurrent use once started.
package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/collector/registry"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
)

// Errors.
var (
	// ErrNotStarted: Publish before Start or after Stop.
	ErrNotStarted = errors.New("publish: not started")
	// ErrDisabled: New with no brokers configured.
	ErrDisabled = errors.New("publish: no kafka brokers configured")
)

// Dependencies of a Publisher.
type Dependencies struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics not registered
}

// Publisher produces flow records, sensor health and alerts to Kafka.
type Publisher struct {
	cfg Config
	log *slog.Logger
	m   *metrics

	mu     sync.RWMutex
	client *kgo.Client

	topicsMu    sync.Mutex
	topicsReady bool
}

// New validates cfg and returns an inert Publisher.
func New(cfg Config, deps Dependencies) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka config: %w", err)
	}
	if !cfg.Enabled() {
		return nil, ErrDisabled
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{cfg: cfg, log: log}
	m, err := newMetrics(deps.Registerer, p.buffered)
	if err != nil {
		return nil, err
	}
	p.m = m
	return p, nil
}

// buffered returns the records waiting for Kafka's acknowledgement.
func (p *Publisher) buffered() float64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.client == nil {
		return 0
	}
	return float64(p.client.BufferedProduceRecords())
}

func codec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "none":
		return kgo.NoCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("compression %q: zstd, lz4, snappy, gzip or none", name)
}

// Start creates the producer and, when configured, the missing topics. An
// unreachable Kafka does not fail Start: topic creation is retried before
// the next publish, and publishes fail (so batches stay unacknowledged)
// until Kafka answers.
func (p *Publisher) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		return nil
	}
	c, _ := codec(p.cfg.Compression)
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(p.cfg.Brokers...),
		kgo.ClientID(p.cfg.ClientID),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is on by default and needs it
		kgo.ProducerBatchCompression(c),
		kgo.ProducerLinger(p.cfg.Linger),
		kgo.ProducerBatchMaxBytes(p.cfg.BatchMaxBytes),
		kgo.MaxBufferedRecords(p.cfg.MaxBufferedRecords),
		kgo.RecordDeliveryTimeout(p.cfg.Timeout+p.cfg.Linger),
		kgo.WithLogger(kgoLogger{p.log}),
	)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	p.client = cl
	if p.cfg.CreateTopics {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := p.ensureTopicsLocked(tctx, cl); err != nil {
			p.log.Warn("kafka topics not created yet; will retry before publishing", "err", err)
		}
	}
	return nil
}

// Stop flushes what is buffered (for up to Timeout) and closes the
// producer. It is idempotent.
func (p *Publisher) Stop() {
	p.mu.Lock()
	cl := p.client
	p.client = nil
	p.mu.Unlock()
	if cl == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Timeout)
	defer cancel()
	_ = cl.Flush(ctx)
	cl.Close()
}

func (p *Publisher) ensureTopicsLocked(ctx context.Context, cl *kgo.Client) error {
	p.topicsMu.Lock()
	defer p.topicsMu.Unlock()
	if p.topicsReady {
		return nil
	}
	adm := kadm.NewClient(cl)
	res, err := adm.CreateTopics(ctx, p.cfg.Partitions, p.cfg.ReplicationFactor, nil,
		p.cfg.Topics.Flows, p.cfg.Topics.Health, p.cfg.Topics.Alerts)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, r := range res {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w (%s)", r.Topic, r.Err, r.ErrMessage)
		}
		if r.Err == nil {
			p.log.Info("kafka topic created", "topic", r.Topic, "partitions", r.NumPartitions)
		}
	}
	p.topicsReady = true
	return nil
}

// produce sends recs and waits until Kafka acknowledged all of them or
// the Timeout passed. It returns the first error. Records already sent
// to a broker that then died cannot be failed by the idempotent producer
// without breaking its sequence: the call then waits until Kafka answers
// again (the batch stays unacknowledged meanwhile; the client logs the
// produce errors and tapir_kafka_buffered_records stays up).
func (p *Publisher) produce(ctx context.Context, topic string, recs []*kgo.Record) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.client == nil {
		return ErrNotStarted
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	if p.cfg.CreateTopics {
		if err := p.ensureTopicsLocked(ctx, p.client); err != nil {
			p.m.errors.WithLabelValues(topic).Add(float64(len(recs)))
			return err
		}
	}
	start := time.Now()
	err := p.client.ProduceSync(ctx, recs...).FirstErr()
	p.m.latency.WithLabelValues(topic).Observe(time.Since(start).Seconds())
	if err != nil {
		p.m.errors.WithLabelValues(topic).Add(float64(len(recs)))
		return fmt.Errorf("produce %d records to %s: %w", len(recs), topic, err)
	}
	p.m.records.WithLabelValues(topic).Add(float64(len(recs)))
	for _, r := range recs {
		p.m.bytes.WithLabelValues(topic).Add(float64(len(r.Value)))
	}
	return nil
}

// FlowKey is the record key of a flow: its Community ID, or its flow ID
// for link-layer pseudo flows that have none.
func FlowKey(r *flow.Record) string {
	if r.CommunityID != "" {
		return r.CommunityID
	}
	return r.ID.String()
}

// EncodeFlow returns a flow record's value in the configured format.
func (p *Publisher) EncodeFlow(r *flow.Record) ([]byte, error) {
	if p.cfg.Format == FormatProtobuf {
		var pb tapirv1.FlowRecord
		return proto.Marshal(tapirv1.FromRecord(r, &pb))
	}
	return r.MarshalJSON()
}

// PublishFlows produces one record per flow record (key: Community ID;
// headers: flow_id, segment, sensor_id, format) to the flows topic and
// returns when Kafka acknowledged them all. Its signature is
// ingest.Dependencies.Publish.
func (p *Publisher) PublishFlows(ctx context.Context, sensorID string, recs []flow.Record) error {
	out := make([]*kgo.Record, 0, len(recs))
	for i := range recs {
		r := &recs[i]
		v, err := p.EncodeFlow(r)
		if err != nil {
			return fmt.Errorf("encode flow %s: %w", r.ID, err)
		}
		sid := r.SensorID
		if sid == "" {
			sid = sensorID
		}
		out = append(out, &kgo.Record{Topic: p.cfg.Topics.Flows, Key: []byte(FlowKey(r)), Value: v,
			Headers: []kgo.RecordHeader{
				{Key: "flow_id", Value: []byte(r.ID.String())},
				{Key: "segment", Value: strconv.AppendUint(nil, uint64(r.Segment), 10)},
				{Key: "sensor_id", Value: []byte(sid)},
				{Key: "format", Value: []byte(p.cfg.Format)},
			}})
	}
	return p.produce(ctx, p.cfg.Topics.Flows, out)
}

// PublishHealth produces each sensor's status (JSON of
// registry.SensorStatus plus the collector's time), keyed by sensor ID.
func (p *Publisher) PublishHealth(ctx context.Context, sensors []registry.SensorStatus) error {
	if len(sensors) == 0 {
		return nil
	}
	now := time.Now().UTC()
	out := make([]*kgo.Record, 0, len(sensors))
	for i := range sensors {
		v, err := json.Marshal(struct {
			Timestamp time.Time `json:"@timestamp"`
			registry.SensorStatus
		}{now, sensors[i]})
		if err != nil {
			return fmt.Errorf("encode health of %s: %w", sensors[i].ID, err)
		}
		out = append(out, &kgo.Record{Topic: p.cfg.Topics.Health, Key: []byte(sensors[i].ID), Value: v})
	}
	return p.produce(ctx, p.cfg.Topics.Health, out)
}

// PublishAlerts produces alerts, each a JSON object, to the alerts topic,
// keyed by its network.community_id when it has one, and returns when
// Kafka acknowledged them all.
func (p *Publisher) PublishAlerts(ctx context.Context, alerts []json.RawMessage) error {
	if len(alerts) == 0 {
		return nil
	}
	out := make([]*kgo.Record, 0, len(alerts))
	for _, a := range alerts {
		var k struct {
			Network struct {
				CommunityID string `json:"community_id"`
			} `json:"network"`
		}
		if err := json.Unmarshal(a, &k); err != nil {
			return fmt.Errorf("alert is not a JSON object: %w", err)
		}
		r := &kgo.Record{Topic: p.cfg.Topics.Alerts, Value: a}
		if k.Network.CommunityID != "" {
			r.Key = []byte(k.Network.CommunityID)
		}
		out = append(out, r)
	}
	return p.produce(ctx, p.cfg.Topics.Alerts, out)
}

// RunHealth publishes snapshot() every HealthInterval until ctx ends;
// failures are logged and counted, never fatal.
func (p *Publisher) RunHealth(ctx context.Context, snapshot func() []registry.SensorStatus) {
	t := time.NewTicker(p.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.PublishHealth(ctx, snapshot()); err != nil && ctx.Err() == nil {
				p.log.Warn("publishing sensor health failed", "err", err)
			}
		}
	}
}

// kgoLogger routes franz-go's warnings and errors to slog.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelWarn
	if level == kgo.LogLevelError {
		lv = slog.LevelError
	}
	k.l.Log(context.Background(), lv, "kafka: "+msg, keyvals...)
}
