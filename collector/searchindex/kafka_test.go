package searchindex

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tapir-sensor/tapir/collector/publish/kafkatest"
	"github.com/tapir-sensor/tapir/flow"
)

// fakeNode is an OpenSearch stand-in for _bulk with external_gte
// versioning: it refuses the first failRequests requests with 503, each
// listed id once with 429, and the id "bad" for good (400); down makes
// every request fail with 503.
type fakeNode struct {
	mu           sync.Mutex
	failRequests int
	throttle     map[string]bool
	down         bool
	docs         map[string]uint64
	requests     int
}

func (f *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case strings.Contains(r.URL.Path, "_simulate_index"):
		_, _ = w.Write([]byte(`{"template":{"mappings":{"properties":{"a":{"type":"long"}}}}}`))
		return
	case strings.HasPrefix(r.URL.Path, "/_cat/indices"):
		_, _ = w.Write([]byte(`[]`))
		return
	case r.URL.Path != "/_bulk":
		http.NotFound(w, r)
		return
	}
	f.requests++
	if f.down || f.failRequests > 0 {
		f.failRequests--
		http.Error(w, `{"error":"unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	var items []string
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var a bulkAction
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil || !sc.Scan() {
			http.Error(w, "bad bulk body", http.StatusBadRequest)
			return
		}
		id, v := a.Index.ID, a.Index.Version
		switch {
		case strings.HasPrefix(id, "ff"):
			items = append(items, `{"index":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"x"}}}`)
		case f.throttle[id]:
			delete(f.throttle, id)
			items = append(items, `{"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"busy"}}}`)
		case f.docs[id] > v:
			items = append(items, `{"index":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"old"}}}`)
		default:
			f.docs[id] = v
			items = append(items, `{"index":{"status":201,"result":"created"}}`)
		}
	}
	fmt.Fprintf(w, `{"took":1,"errors":true,"items":[%s]}`, strings.Join(items, ","))
}

func (f *fakeNode) stored() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.docs)
}

// produceFlows produces n flow records (ECS JSON with tapir's headers) of
// distinct flows, segment seg; the last one with an id the fake refuses
// for good when bad.
func produceFlows(t *testing.T, brokers []string, topic string, n int, seg uint32, bad bool) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, -1, nil, topic); err != nil && !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
		t.Fatal(err)
	}
	var ids []string
	for i := range n {
		start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		r := flow.Record{ID: flow.NewID(start, 1, uint32(i)), Segment: seg, SensorID: "s", Start: start, End: start}
		if bad && i == n-1 {
			r.ID = flow.NewID(time.Unix(0, -1).Add(-time.Hour), 1, 1) // id starts with "ff"
		}
		r.Tuple.Family, r.Tuple.Proto = flow.FamilyIPv4, flow.ProtoUDP
		v, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID.String())
		rec := &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: v, Headers: []kgo.RecordHeader{
			{Key: "flow_id", Value: []byte(r.ID.String())}, {Key: "segment", Value: []byte(fmt.Sprint(seg))}, {Key: "format", Value: []byte("ecs-json")}}}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func startIndexer(t *testing.T, node string, brokers []string, topic, group string) *Indexer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.URLs, cfg.ConsumerGroup, cfg.RetentionDays = []string{node}, group, 0
	cfg.RetryMin, cfg.RetryMax, cfg.BulkMaxRecords = 10*time.Millisecond, 50*time.Millisecond, 40
	ix, err := New(cfg, Dependencies{Kafka: Source{Brokers: brokers, Topic: topic}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ix
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAtLeastOnceFromKafka, on the real Kafka with an OpenSearch
// stand-in: failed requests and throttled documents are retried until
// indexed, a document refused for good is counted as dropped, offsets are
// committed only after the bulk succeeded (an indexer stopped while
// OpenSearch is down leaves its records to the next one), older segments
// never replace newer ones, and nothing is indexed twice once committed.
func TestAtLeastOnceFromKafka(t *testing.T) {
	cfgK := kafkatest.Config(t)
	topic, group := cfgK.Topics.Flows, cfgK.Topics.Flows+"-group"
	fake := &fakeNode{failRequests: 2, throttle: map[string]bool{}, docs: map[string]uint64{}}
	node := httptest.NewServer(fake)
	defer node.Close()

	ids := produceFlows(t, cfgK.Brokers, topic, 100, 2, true)
	fake.mu.Lock()
	fake.throttle[ids[3]], fake.throttle[ids[50]] = true, true
	fake.mu.Unlock()
	ix := startIndexer(t, node.URL, cfgK.Brokers, topic, group)
	waitFor(t, "99 documents", func() bool { return fake.stored() == 99 })
	waitFor(t, "the drop counted", func() bool { return counterValue(t, ix.m.dropped.WithLabelValues("mapper_parsing_exception")) == 1 })
	if r := counterValue(t, ix.m.retries.WithLabelValues("request")); r < 2 {
		t.Errorf("request retries %v, want at least 2", r)
	}
	if r := counterValue(t, ix.m.retries.WithLabelValues("document")); r != 2 {
		t.Errorf("document retries %v, want 2", r)
	}
	// The fake stores a bulk before the indexer has its answer: wait for
	// the commit (lag 0 comes only after it), or a Stop now would leave
	// the last bulk's records uncommitted and the next phase's lag high.
	waitFor(t, "lag 0", func() bool { return gaugeValue(t, ix.m.lag) == 0 })
	ix.Stop()

	// Older segments of the same flows (a resent batch) while OpenSearch
	// is down: the indexer stops mid-retry and commits nothing.
	produceFlows(t, cfgK.Brokers, topic, 20, 1, false)
	fake.mu.Lock()
	fake.down = true
	before := fake.requests
	fake.mu.Unlock()
	ix = startIndexer(t, node.URL, cfgK.Brokers, topic, group)
	waitFor(t, "a failed request", func() bool { fake.mu.Lock(); defer fake.mu.Unlock(); return fake.requests > before })
	// The records held through the outage show as lag.
	waitFor(t, "lag 20", func() bool { return gaugeValue(t, ix.m.lag) == 20 })
	ix.Stop()

	// The next indexer reads them again; they are stale (409).
	fake.mu.Lock()
	fake.down = false
	fake.mu.Unlock()
	ix = startIndexer(t, node.URL, cfgK.Brokers, topic, group)
	waitFor(t, "20 stale", func() bool { return counterValue(t, ix.m.docs.WithLabelValues("stale")) == 20 })
	waitFor(t, "lag 0", func() bool { return gaugeValue(t, ix.m.lag) == 0 })
	fake.mu.Lock()
	for _, id := range ids[:20] {
		if fake.docs[id] != 2 {
			t.Errorf("flow %s at segment %d, want 2", id, fake.docs[id])
		}
	}
	fake.mu.Unlock()
	ix.Stop()

	// Everything committed: a new indexer of the group sends only the one
	// record produced after it started (segment 3 of the first flow).
	fake.mu.Lock()
	before = fake.requests
	fake.mu.Unlock()
	ix = startIndexer(t, node.URL, cfgK.Brokers, topic, group)
	produceFlows(t, cfgK.Brokers, topic, 1, 3, false)
	waitFor(t, "segment 3", func() bool { fake.mu.Lock(); defer fake.mu.Unlock(); return fake.docs[ids[0]] == 3 })
	ix.Stop()
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.requests-before != 1 {
		t.Fatalf("%d bulk requests for one new record after everything was committed", fake.requests-before)
	}
}
