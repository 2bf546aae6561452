package searchindex

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
)

func testIndexer(t *testing.T, mod func(*Config)) *Indexer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.URLs = []string{"http://127.0.0.1:1"}
	if mod != nil {
		mod(&cfg)
	}
	ix, err := New(cfg, Dependencies{Kafka: Source{Brokers: []string{"127.0.0.1:1"}, Topic: "t"}})
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil || c.Enabled() {
		t.Fatalf("defaults: %v, enabled %v", err, c.Enabled())
	}
	c.URLs = []string{"search:9200"}
	c.IndexPrefix = "Tapir*"
	c.RetryMax = time.Millisecond
	err := c.Validate()
	for _, want := range []string{"urls", "index_prefix", "retry_min"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	if _, err := New(DefaultConfig(), Dependencies{}); err != ErrDisabled {
		t.Fatalf("New without urls: %v", err)
	}
}

// TestExpired: daily indices whose day ended more than retention_days ago
// go; today's, recent ones and other names stay.
func TestExpired(t *testing.T) {
	ix := testIndexer(t, func(c *Config) { c.RetentionDays = 7 })
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	got := ix.expired([]string{"tapir-flows-2026.12.07", "tapir-flows-2026.11.30", "tapir-flows-2026.11.29",
		"tapir-flows-2025.01.01", "tapir-flows-shapes", "other-2020.01.01"}, now)
	want := []string{"tapir-flows-2026.11.29", "tapir-flows-2025.01.01"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("expired %v, want %v", got, want)
	}
}

func TestBackoff(t *testing.T) {
	ix := testIndexer(t, func(c *Config) { c.RetryMin, c.RetryMax = 100*time.Millisecond, time.Second })
	for attempt, hi := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 9: time.Second} {
		for range 20 {
			if d := ix.backoff(attempt); d > hi || d < hi/2 {
				t.Fatalf("attempt %d: backoff %v outside [%v, %v]", attempt, d, hi/2, hi)
			}
		}
	}
}

// TestMakeDoc: id, version and daily index come from the headers (ECS
// JSON), from the JSON when there are none, and protobuf records become
// the same ECS JSON.
func TestMakeDoc(t *testing.T) {
	ix := testIndexer(t, nil)
	start := time.Date(2021, 7, 25, 23, 59, 59, 0, time.UTC)
	r := flow.Record{ID: flow.NewID(start, 7, 9), Segment: 3, SensorID: "s", Start: start, End: start.Add(2 * time.Hour)}
	r.Tuple.Family, r.Tuple.Proto = flow.FamilyIPv4, flow.ProtoUDP
	js, err := r.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var pb tapirv1.FlowRecord
	pbBytes, err := proto.Marshal(tapirv1.FromRecord(&r, &pb))
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(format string) []kgo.RecordHeader {
		return []kgo.RecordHeader{{Key: "flow_id", Value: []byte(r.ID.String())}, {Key: "segment", Value: []byte("3")}, {Key: "format", Value: []byte(format)}}
	}
	for name, rec := range map[string]*kgo.Record{
		"headers":    {Value: js, Headers: hdr("ecs-json")},
		"no headers": {Value: js},
		"protobuf":   {Value: pbBytes, Headers: hdr("protobuf")},
	} {
		d, err := ix.makeDoc(rec)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d.id != r.ID.String() || d.version != 3 || d.index != "tapir-flows-2021.07.25" {
			t.Fatalf("%s: id %s version %d index %s", name, d.id, d.version, d.index)
		}
		var a, b any
		if json.Unmarshal(d.body, &a) != nil || json.Unmarshal(js, &b) != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: body differs from the record's ECS JSON:\n%s\n%s", name, d.body, js)
		}
	}
	if _, err := ix.makeDoc(&kgo.Record{Value: []byte(`{"tapir":{"flow_id":"nope"}}`)}); err == nil {
		t.Fatal("a record without a flow id was accepted")
	}
	body, err := bulkBody([]doc{{index: "i", id: "x", version: 3, body: []byte(" {\"a\":1}\n")}})
	if err != nil || string(body) != `{"index":{"_index":"i","_id":"x","version":3,"version_type":"external_gte"}}`+"\n"+`{"a":1}`+"\n" {
		t.Fatalf("bulk body %q, %v", body, err)
	}
}
