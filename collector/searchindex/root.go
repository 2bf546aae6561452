package searchindex

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tapir-sensor/tapir/internal/lograte"
	"github.com/tapir-sensor/tapir/internal/tlsconfig"
)

// ErrDisabled: New with no OpenSearch URLs configured.
var ErrDisabled = errors.New("searchindex: no opensearch urls configured")

// Source is the Kafka topic the indexer reads: the collector's flows topic.
type Source struct {
	Brokers []string
	Topic   string
}

// Dependencies of an Indexer.
type Dependencies struct {
	Kafka      Source
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics not registered
}

// Indexer copies flow records from Kafka into OpenSearch.
type Indexer struct {
	cfg      Config
	src      Source
	log      *slog.Logger
	m        *metrics
	dropLog  *lograte.Limiter
	retryLog *lograte.Limiter

	os *opensearchapi.Client
	kc *kgo.Client

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New validates cfg and returns an inert Indexer.
func New(cfg Config, deps Dependencies) (*Indexer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("opensearch config: %w", err)
	}
	if !cfg.Enabled() {
		return nil, ErrDisabled
	}
	if len(deps.Kafka.Brokers) == 0 || deps.Kafka.Topic == "" {
		return nil, errors.New("searchindex: the indexer reads the kafka flows topic: set kafka.brokers")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	return &Indexer{cfg: cfg, src: deps.Kafka, log: log, m: m,
		dropLog: lograte.New(10 * time.Second), retryLog: lograte.New(10 * time.Second)}, nil
}

// Start connects to OpenSearch and Kafka and starts indexing and
// retention. An unreachable OpenSearch or Kafka does not fail Start: the
// indexer retries until they answer.
func (ix *Indexer) Start(ctx context.Context) error {
	osc, err := ix.openSearchClient()
	if err != nil {
		return err
	}
	kc, err := kgo.NewClient(kgo.SeedBrokers(ix.src.Brokers...), kgo.ConsumerGroup(ix.cfg.ConsumerGroup),
		kgo.ConsumeTopics(ix.src.Topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ClientID("tapir-collector-searchindex"))
	if err != nil {
		return fmt.Errorf("searchindex: kafka client: %w", err)
	}
	ix.os, ix.kc = osc, kc
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ix.cancel = cancel
	ix.checkTemplate(rctx)
	ix.wg.Add(2)
	go func() { defer ix.wg.Done(); ix.run(rctx) }()
	go func() { defer ix.wg.Done(); ix.runRetention(rctx) }()
	ix.log.Info("opensearch indexer started", "urls", ix.cfg.URLs, "topic", ix.src.Topic, "group", ix.cfg.ConsumerGroup)
	return nil
}

// Stop ends indexing: a bulk request in flight is abandoned (its records
// are not committed and are indexed again by the next run).
func (ix *Indexer) Stop() {
	if ix.cancel == nil {
		return
	}
	ix.cancel()
	ix.wg.Wait()
	ix.kc.Close()
	ix.cancel = nil
}

// openSearchClient builds the OpenSearch client (the client's own retries
// off: run retries with backoff and counts them).
func (ix *Indexer) openSearchClient() (*opensearchapi.Client, error) { return newClient(ix.cfg) }

// newClient builds an OpenSearch client from cfg's URLs, credentials and
// CA, with the client's own retries off.
func newClient(c Config) (*opensearchapi.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = c.RequestTimeout
	if c.CAFile != "" {
		pool, err := tlsconfig.CAPool(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("searchindex: ca_file: %w", err)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	cfg := opensearch.Config{Addresses: c.URLs, Transport: tr, DisableRetry: true, Username: c.Username}
	if c.PasswordFile != "" {
		pw, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("searchindex: password_file: %w", err)
		}
		cfg.Password = strings.TrimRight(string(pw), "\r\n")
	}
	osc, err := opensearchapi.NewClient(opensearchapi.Config{Client: cfg})
	if err != nil {
		return nil, fmt.Errorf("searchindex: opensearch client: %w", err)
	}
	return osc, nil
}

// checkTemplate warns when no index template matches the daily indices
// (deploy/opensearch/setup.sh installs it): OpenSearch would then map the
// records dynamically.
func (ix *Indexer) checkTemplate(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	idx := ix.index(time.Now())
	sim, err := ix.os.IndexTemplate.SimulateIndex(ctx, opensearchapi.IndexTemplateSimulateIndexReq{Index: idx})
	if err != nil {
		ix.log.Warn("opensearch not reachable at start (or refused the template check); indexing will retry", "err", err)
		return
	}
	var mappings map[string]any
	if err := json.Unmarshal(sim.Template.Mappings, &mappings); err != nil || len(mappings) == 0 {
		ix.log.Warn("no index template matches the flow indices: install deploy/opensearch/opensearch-template.json (deploy/opensearch/setup.sh)",
			"index", idx)
	}
}

// index names the daily index of a flow first seen at t.
func (ix *Indexer) index(t time.Time) string {
	return ix.cfg.IndexPrefix + t.UTC().Format("2006.01.02")
}
