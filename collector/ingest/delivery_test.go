package ingest

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tapir-sensor/tapir/collector/ingest/ingesttest"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
)

func gaugeValue(t testing.TB, g interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatalf("read metric: %v", err)
	}
	if m.Gauge != nil {
		return m.GetGauge().GetValue()
	}
	return m.GetCounter().GetValue()
}

// waitUntil polls cond for up to d.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// epochSession opens a stream and sends a hello with an epoch; it returns
// the stream and the HelloAck.
func epochSession(t *testing.T, cc *grpc.ClientConn, id string, epoch uint64) (grpc.BidiStreamingClient[tapirv1.SensorMessage, tapirv1.CollectorMessage], *tapirv1.HelloAck, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	st, err := tapirv1.NewIngestClient(cc).Stream(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := st.Send(&tapirv1.SensorMessage{Msg: &tapirv1.SensorMessage_Hello{Hello: &tapirv1.Hello{SensorId: id, Epoch: epoch}}}); err != nil {
		cancel()
		t.Fatal(err)
	}
	m, err := st.Recv()
	if err != nil {
		cancel()
		t.Fatalf("hello (epoch %d): %v", epoch, err)
	}
	return st, m.GetHelloAck(), cancel
}

func sendBatch(t *testing.T, st grpc.BidiStreamingClient[tapirv1.SensorMessage, tapirv1.CollectorMessage], b *tapirv1.Batch) (*tapirv1.CollectorMessage, error) {
	t.Helper()
	if err := st.Send(&tapirv1.SensorMessage{Msg: &tapirv1.SensorMessage_Batch{Batch: b}}); err != nil {
		return nil, err
	}
	return st.Recv()
}

// TestStreamsEndWithTheirSensor: hundreds of sensors connecting and going
// away in every way (after the hello ack, half-closed, cancelled mid
// batch, without a hello) leave no stream running, free every slot of a
// small max_streams, and the registry shows the sensor disconnected.
func TestStreamsEndWithTheirSensor(t *testing.T) {
	pki := ingesttest.NewPKI(t, "good")
	store := ingesttest.NewMemStore()
	tr := ingesttest.CaptureTraffic(t, "good", 4)
	cfg := DefaultConfig()
	cfg.TLS = pki.Server()
	cfg.MaxStreams = 2
	cfg.HelloTimeout = 200 * time.Millisecond
	s := newTestServer(t, cfg, store)
	cc, err := grpc.NewClient(s.Addr().String(), grpc.WithTransportCredentials(clientCreds(t, pki.Sensor("good"))))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	const cycles = 300
	for i := range cycles {
		st, ack, cancel := epochSession(t, cc, "good", 5)
		if ack == nil {
			t.Fatalf("cycle %d: no hello ack", i)
		}
		switch i % 3 {
		case 0: // the sensor process dies
			cancel()
		case 1: // a clean half-close
			if err := st.CloseSend(); err != nil {
				t.Fatalf("cycle %d: close send: %v", i, err)
			}
			// Waits for the server to end the stream; how it ends is
			// not under test, only that its handler goes.
			_, _ = st.Recv()
			cancel()
		case 2: // a batch sent, then gone before the ack
			if err := st.Send(&tapirv1.SensorMessage{Msg: &tapirv1.SensorMessage_Batch{Batch: &tapirv1.Batch{Seq: uint64(i + 1), Epoch: 5,
				Blocks: []*tapirv1.PacketBlock{{Data: tr.Blocks[i%len(tr.Blocks)]}}}}}); err != nil {
				t.Fatalf("cycle %d: send batch: %v", i, err)
			}
			cancel()
		}
		if !waitUntil(2*time.Second, func() bool { return len(s.slots) == 0 }) {
			t.Fatalf("cycle %d (kind %d): the stream's handler is still running 2 s after its sensor left", i, i%3)
		}
	}
	if !waitUntil(5*time.Second, func() bool { return gaugeValue(t, s.metrics.activeStream) == 0 && len(s.slots) == 0 }) {
		t.Fatalf("after %d connect/disconnect cycles: %v streams active, %d slots held", cycles,
			gaugeValue(t, s.metrics.activeStream), len(s.slots))
	}
	if sn, _ := s.Registry().Sensor("good"); sn.Connected || sn.Streams != 0 {
		t.Fatalf("registry after every sensor left: connected %v, %d streams", sn.Connected, sn.Streams)
	}
	if got := s.budget.inUse(); got != 0 {
		t.Fatalf("%d in-flight bytes still held", got)
	}
	// Both slots are free: two sensors at once are served.
	_, a1, c1 := epochSession(t, cc, "good", 5)
	defer c1()
	_, a2, c2 := epochSession(t, cc, "good", 5)
	defer c2()
	if a1 == nil || a2 == nil {
		t.Fatal("a slot stayed taken")
	}
}

// TestEpochs: a fresh spool (a new epoch) under a known sensor id is told
// nothing is durable, and its seq 1 is stored, not taken for the old
// epoch's seq 1; a batch of another epoch than its stream's is refused.
func TestEpochs(t *testing.T) {
	pki := ingesttest.NewPKI(t, "good")
	store := ingesttest.NewMemStore()
	tr := ingesttest.CaptureTraffic(t, "good", 4)
	s := startServer(t, pki.Server(), store)
	cc, err := grpc.NewClient(s.Addr().String(), grpc.WithTransportCredentials(clientCreds(t, pki.Sensor("good"))))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	batch := func(epoch, seq uint64, i int) *tapirv1.Batch {
		return &tapirv1.Batch{Seq: seq, Epoch: epoch, Flows: []*tapirv1.FlowRecord{tapirv1.FromRecord(&tr.Records[i%len(tr.Records)], nil)},
			Blocks: []*tapirv1.PacketBlock{{Data: tr.Blocks[i%len(tr.Blocks)]}}}
	}
	old, _, cancel := epochSession(t, cc, "good", 111)
	defer cancel()
	for seq := uint64(1); seq <= 3; seq++ {
		if m, err := sendBatch(t, old, batch(111, seq, int(seq))); err != nil || m.GetAck().GetSeq() != seq {
			t.Fatalf("epoch 111 seq %d: %v %v", seq, m, err)
		}
	}
	// The reinstalled sensor, while the old stream is still open.
	fresh, ack, cancel2 := epochSession(t, cc, "good", 222)
	defer cancel2()
	if ack.GetDurableSeq() != 0 || ack.GetEpoch() != 222 {
		t.Fatalf("new epoch's hello ack: durable %d epoch %d; want 0 222", ack.GetDurableSeq(), ack.GetEpoch())
	}
	if m, err := sendBatch(t, fresh, batch(222, 1, 0)); err != nil || m.GetAck().GetSeq() != 1 {
		t.Fatalf("epoch 222 seq 1: %v %v", m, err)
	}
	if n := len(store.Batches("good")); n != 4 {
		t.Fatalf("%d batches stored, want 4 (the new epoch's seq 1 taken for a duplicate?)", n)
	}
	if gaugeValue(t, s.metrics.sharedID) == 0 {
		t.Error("two live epochs under one id not counted")
	}
	// The old epoch again: durable seq 3.
	_, ack, cancel3 := epochSession(t, cc, "good", 111)
	defer cancel3()
	if ack.GetDurableSeq() != 3 {
		t.Fatalf("epoch 111 durable seq %d, want 3", ack.GetDurableSeq())
	}
	// A batch of another epoch than its stream's.
	if _, err := sendBatch(t, fresh, batch(111, 4, 1)); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "epoch") {
		t.Fatalf("batch of another epoch: %v", err)
	}
}

// TestPerSensorStreamLimit: one certificate cannot open more than
// max_streams_per_sensor streams; other sensors are unaffected.
func TestPerSensorStreamLimit(t *testing.T) {
	pki := ingesttest.NewPKI(t, "good", "other")
	store := ingesttest.NewMemStore()
	cfg := DefaultConfig()
	cfg.TLS = pki.Server()
	cfg.MaxStreamsPerSensor = 2
	s := newTestServer(t, cfg, store)
	cc, _ := grpc.NewClient(s.Addr().String(), grpc.WithTransportCredentials(clientCreds(t, pki.Sensor("good"))))
	defer cc.Close()
	for range 2 {
		_, _, cancel := epochSession(t, cc, "good", 1)
		defer cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := tapirv1.NewIngestClient(cc).Stream(ctx)
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "max_streams_per_sensor") {
		t.Fatalf("third stream of one sensor: %v", err)
	}
	oc, _ := grpc.NewClient(s.Addr().String(), grpc.WithTransportCredentials(clientCreds(t, pki.Sensor("other"))))
	defer oc.Close()
	if _, ack, c := epochSession(t, oc, "other", 1); ack == nil {
		t.Fatal("another sensor refused")
	} else {
		c()
	}
}

// TestFieldLimits: a flow record with an oversized string (a 15 MB
// interface name), too many DNS answers, or a stats report with too many
// counters is refused with InvalidArgument, counted, and not stored.
func TestFieldLimits(t *testing.T) {
	pki := ingesttest.NewPKI(t, "good")
	store := ingesttest.NewMemStore()
	tr := ingesttest.CaptureTraffic(t, "good", 4)
	s := startServer(t, pki.Server(), store)
	cc, _ := grpc.NewClient(s.Addr().String(), grpc.WithTransportCredentials(clientCreds(t, pki.Sensor("good"))),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	defer cc.Close()
	huge := tapirv1.FromRecord(&tr.Records[0], nil)
	huge.Interface = strings.Repeat("x", 15<<20)
	answers := tapirv1.FromRecord(&tr.Records[len(tr.Records)-1], nil)
	answers.App = &tapirv1.AppMeta{Dns: &tapirv1.DNSMeta{QueryName: "a.example", Answers: make([]*tapirv1.DNSAnswer, 1000)}}
	for i := range answers.App.Dns.Answers {
		answers.App.Dns.Answers[i] = &tapirv1.DNSAnswer{Name: "a.example"}
	}
	deepString := tapirv1.FromRecord(&tr.Records[0], nil)
	deepString.App = &tapirv1.AppMeta{Http: &tapirv1.HTTPMeta{Uri: "/" + strings.Repeat("a", 5000)}}
	counters := map[string]uint64{}
	for i := range 300 {
		counters[strings.Repeat("c", i+1)] = 1
	}
	cases := map[string]*tapirv1.Batch{
		"15 MB interface name": {Flows: []*tapirv1.FlowRecord{huge}},
		"1000 DNS answers":     {Flows: []*tapirv1.FlowRecord{answers}},
		"5000-byte URI":        {Flows: []*tapirv1.FlowRecord{deepString}},
		"300 stats counters":   {Stats: &tapirv1.SensorStats{UnixNano: 1, Counters: counters}},
	}
	seq := uint64(0)
	for name, b := range cases {
		seq++
		b.Seq = seq
		st, _, cancel := epochSession(t, cc, "good", 0)
		_, err := sendBatch(t, st, b)
		cancel()
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	if n := len(store.Batches("good")); n != 0 {
		t.Errorf("%d oversized batches stored", n)
	}
	if got := gaugeValue(t, s.metrics.overLimit); got != float64(len(cases)) {
		t.Errorf("over-limit batches counted %v, want %d", got, len(cases))
	}
	goodSensor(t, s, pki, store, tr, 100)
}

// TestInflightBudget: with a budget smaller than the batches sent at
// once, streams wait for it (counted) instead of being refused, every
// batch is stored, and the budget is whole again afterwards.
func TestInflightBudget(t *testing.T) {
	const sensors = 6
	ids := []string{"s0", "s1", "s2", "s3", "s4", "s5"}
	pki := ingesttest.NewPKI(t, ids...)
	store := ingesttest.NewMemStore()
	store.SetDelay(50 * time.Millisecond)
	blocks := map[string][]*tapirv1.PacketBlock{}
	size := 0
	for _, id := range ids {
		size = 0
		for _, b := range ingesttest.CaptureTraffic(t, id, 4).Blocks {
			blocks[id] = append(blocks[id], &tapirv1.PacketBlock{Data: b})
			size += len(b)
		}
	}
	cfg := DefaultConfig()
	cfg.TLS = pki.Server()
	cfg.MaxInflightBytes = int64(size) * 2 // two batches at a time
	s := newTestServer(t, cfg, store)
	var wg sync.WaitGroup
	errs := make(chan error, sensors)
	for i := range sensors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := ids[i]
			cc, _ := grpc.NewClient(s.Addr().String(), grpc.WithTransportCredentials(clientCreds(t, pki.Sensor(id))))
			defer cc.Close()
			st, _, cancel := epochSession(t, cc, id, 9)
			defer cancel()
			for seq := uint64(1); seq <= 3; seq++ {
				if err := st.Send(&tapirv1.SensorMessage{Msg: &tapirv1.SensorMessage_Batch{Batch: &tapirv1.Batch{Seq: seq, Epoch: 9, Blocks: blocks[id]}}}); err != nil {
					errs <- err
					return
				}
			}
			for range 3 {
				if _, err := st.Recv(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, id := range ids {
		if n := len(store.Batches(id)); n != 3 {
			t.Errorf("%s: %d batches stored, want 3", id, n)
		}
	}
	if gaugeValue(t, s.metrics.budgetWaits) == 0 {
		t.Error("no stream waited for the in-flight budget")
	}
	if !waitUntil(2*time.Second, func() bool { return s.budget.inUse() == 0 }) {
		t.Errorf("%d in-flight bytes still held", s.budget.inUse())
	}
}

func newTestServer(t *testing.T, cfg Config, store *ingesttest.MemStore) *Server {
	t.Helper()
	cfg.HandshakeTimeout = time.Second
	cfg.StopTimeout = time.Second
	s, err := New(cfg, Dependencies{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(lis); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}
