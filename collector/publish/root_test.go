package publish_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/collector/publish"
	"github.com/tapir-sensor/tapir/collector/publish/kafkatest"
	"github.com/tapir-sensor/tapir/collector/registry"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/storage/storagetest"
)

// captureRecords returns flow records of the real capture's flows, as a
// sensor reports them: every flow once as an update (segment 0, reason
// active) and once final (segment 1), so several records share a key.
func captureRecords(t *testing.T) []flow.Record {
	flows := storagetest.LoadFlows(t, storagetest.Capture)
	var out []flow.Record
	for _, in := range storagetest.Instances(flows, "sensor-a", 0, 4) {
		upd := in.Record
		upd.Reason = flow.ReasonActive
		fin := in.Record
		fin.Segment = 1
		out = append(out, upd, fin)
	}
	return out
}

type ecsIDs struct {
	Network struct {
		CommunityID string `json:"community_id"`
	} `json:"network"`
	Tapir struct {
		FlowID  string `json:"flow_id"`
		Segment uint32 `json:"segment"`
	} `json:"tapir"`
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func start(t *testing.T, cfg publish.Config) *publish.Publisher {
	t.Helper()
	p, err := publish.New(cfg, publish.Dependencies{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// TestFlowsECS publishes the flow records of a real capture in two calls
// and reads the topic back with franz-go and with kcat: every record once,
// keyed by its Community ID (as flow.CommunityID computes it from the
// captured tuple), each key on one partition, kcat seeing the same bytes.
func TestFlowsECS(t *testing.T) {
	cfg := kafkatest.Config(t)
	p := start(t, cfg)
	recs := captureRecords(t)
	ctx := context.Background()
	half := len(recs) / 2
	for _, part := range [][]flow.Record{recs[:half], recs[half:]} {
		if err := p.PublishFlows(ctx, "sensor-a", part); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]*flow.Record{}
	for i := range recs {
		want[fmt.Sprintf("%s/%d", recs[i].ID, recs[i].Segment)] = &recs[i]
	}
	got := kafkatest.ReadAll(t, cfg.Brokers, cfg.Topics.Flows, len(recs), 2*time.Second, time.Minute)
	if len(got) != len(recs) {
		t.Fatalf("read %d records, published %d", len(got), len(recs))
	}
	partOf := map[string]int32{}
	seen := map[string]bool{}
	values := map[string]string{}
	for _, r := range got {
		var e ecsIDs
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatalf("record is not JSON: %v: %.200s", err, r.Value)
		}
		id := fmt.Sprintf("%s/%d", e.Tapir.FlowID, e.Tapir.Segment)
		src, ok := want[id]
		if !ok || seen[id] {
			t.Fatalf("record %s unexpected or duplicated (known %v)", id, ok)
		}
		seen[id] = true
		if cid := flow.CommunityID(0, src.Tuple); string(r.Key) != cid || e.Network.CommunityID != cid {
			t.Fatalf("record %s: key %q, community_id %q, want %q", id, r.Key, e.Network.CommunityID, cid)
		}
		if header(r, "flow_id") != e.Tapir.FlowID || header(r, "segment") != fmt.Sprint(e.Tapir.Segment) || header(r, "sensor_id") != "sensor-a" {
			t.Fatalf("record %s: headers %v", id, r.Headers)
		}
		if p, ok := partOf[string(r.Key)]; ok && p != r.Partition {
			t.Fatalf("key %s on partitions %d and %d", r.Key, p, r.Partition)
		}
		partOf[string(r.Key)] = r.Partition
		values[string(r.Key)+"\t"+string(r.Value)] = id
	}
	parts := map[int32]bool{}
	for _, p := range partOf {
		parts[p] = true
	}
	if len(parts) < 2 {
		t.Fatalf("%d keys all on one partition of %d", len(partOf), cfg.Partitions)
	}
	// kcat, an outside client, reads the same records.
	lines := kafkatest.Kcat(t, cfg.Brokers, cfg.Topics.Flows)
	if len(lines) != len(got) {
		t.Fatalf("kcat read %d records, franz-go %d", len(lines), len(got))
	}
	for _, l := range lines {
		if _, ok := values[l]; !ok {
			t.Fatalf("kcat record not among franz-go's: %.200s", l)
		}
		delete(values, l)
	}
}

// TestFlowsProtobuf: the protobuf format decodes back to the records.
func TestFlowsProtobuf(t *testing.T) {
	cfg := kafkatest.Config(t)
	cfg.Format = publish.FormatProtobuf
	cfg.Compression = "lz4"
	p := start(t, cfg)
	recs := captureRecords(t)
	if err := p.PublishFlows(context.Background(), "sensor-a", recs); err != nil {
		t.Fatal(err)
	}
	got := kafkatest.ReadAll(t, cfg.Brokers, cfg.Topics.Flows, len(recs), 2*time.Second, time.Minute)
	if len(got) != len(recs) {
		t.Fatalf("read %d records, published %d", len(got), len(recs))
	}
	byID := map[string]*flow.Record{}
	for i := range recs {
		byID[fmt.Sprintf("%s/%d", recs[i].ID, recs[i].Segment)] = &recs[i]
	}
	for _, r := range got {
		var pb tapirv1.FlowRecord
		var fr flow.Record
		if err := proto.Unmarshal(r.Value, &pb); err != nil {
			t.Fatal(err)
		}
		if err := tapirv1.ToRecord(&pb, &fr); err != nil {
			t.Fatal(err)
		}
		src := byID[fmt.Sprintf("%s/%d", fr.ID, fr.Segment)]
		if src == nil {
			t.Fatalf("unexpected record %s/%d", fr.ID, fr.Segment)
		}
		if fr.Tuple != src.Tuple || fr.Source.Packets != src.Source.Packets || fr.Destination.Bytes != src.Destination.Bytes ||
			!fr.Start.Equal(src.Start) || !fr.End.Equal(src.End) || fr.CommunityID != string(r.Key) {
			t.Fatalf("record %s differs after the round trip:\n got %+v\nwant %+v", fr.ID, fr, *src)
		}
	}
}

// TestHealthAndAlerts: sensor health keyed by sensor id, alerts keyed by
// the Community ID they name.
func TestHealthAndAlerts(t *testing.T) {
	cfg := kafkatest.Config(t)
	p := start(t, cfg)
	ctx := context.Background()
	sensors := []registry.SensorStatus{{Info: registry.Info{ID: "tap-01"}, Connected: true, Stats: map[string]uint64{"kernel_drops": 3}},
		{Info: registry.Info{ID: "tap-02"}}}
	if err := p.PublishHealth(ctx, sensors); err != nil {
		t.Fatal(err)
	}
	recs := captureRecords(t)
	cid := recs[0].CommunityID
	alerts := []json.RawMessage{json.RawMessage(`{"rule":{"name":"test"},"network":{"community_id":"` + cid + `"}}`), json.RawMessage(`{"rule":{"name":"no-flow"}}`)}
	if err := p.PublishAlerts(ctx, alerts); err != nil {
		t.Fatal(err)
	}
	if err := p.PublishAlerts(ctx, []json.RawMessage{json.RawMessage(`not json`)}); err == nil {
		t.Fatal("an alert that is not JSON was published")
	}
	h := kafkatest.ReadAll(t, cfg.Brokers, cfg.Topics.Health, 2, time.Second, time.Minute)
	var keys []string
	for _, r := range h {
		var st registry.SensorStatus
		if err := json.Unmarshal(r.Value, &st); err != nil || st.ID != string(r.Key) {
			t.Fatalf("health record %s: %v %+v", r.Key, err, st)
		}
		keys = append(keys, string(r.Key))
	}
	slices.Sort(keys)
	if strings.Join(keys, ",") != "tap-01,tap-02" {
		t.Fatalf("health keys %v", keys)
	}
	a := kafkatest.ReadAll(t, cfg.Brokers, cfg.Topics.Alerts, 2, time.Second, time.Minute)
	if len(a) != 2 {
		t.Fatalf("%d alerts", len(a))
	}
	for _, r := range a {
		if strings.Contains(string(r.Value), cid) != (string(r.Key) == cid) {
			t.Fatalf("alert key %q for %s", r.Key, r.Value)
		}
	}
}

// TestUnreachableFailsInTime: with no broker answering, PublishFlows fails
// within its timeout (so the collector does not ack and the sensor spools).
func TestUnreachableFailsInTime(t *testing.T) {
	cfg := publish.DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:1"}
	cfg.Timeout = 2 * time.Second
	p := start(t, cfg)
	t0 := time.Now()
	err := p.PublishFlows(context.Background(), "sensor-a", captureRecords(t)[:4])
	if err == nil {
		t.Fatal("publish to an unreachable broker succeeded")
	}
	if d := time.Since(t0); d > 20*time.Second {
		t.Fatalf("publish failed only after %v (timeout %v)", d, cfg.Timeout)
	}
}
