package ingest

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/tapir-sensor/tapir/collector/ingest/ingesttest"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestExpiredOnArrival sends a real capture's blocks (community-id-spec,
// recorded years ago) to a collector whose packet retention is 7 days:
// every batch is stored and acked, its packets are counted in
// tapir_collector_ingest_expired_on_arrival_packets_total{sensor} and one
// warning names the sensor (the next, within the rate limit, is held
// back); a resent duplicate is not counted again. The same traffic under
// a clock within the retention counts nothing and logs nothing.
func TestExpiredOnArrival(t *testing.T) {
	const id = "old-capture"
	pki := ingesttest.NewPKI(t, id)
	tr := ingesttest.CaptureTraffic(t, id, 4)
	var blocks []*tapirv1.PacketBlock
	for _, b := range tr.Blocks {
		blocks = append(blocks, &tapirv1.PacketBlock{Data: b})
	}
	var flows []*tapirv1.FlowRecord
	var last time.Time
	for i := range tr.Records {
		flows = append(flows, tapirv1.FromRecord(&tr.Records[i], nil))
		if tr.Records[i].End.After(last) {
			last = tr.Records[i].End
		}
	}
	batch := func(seq uint64) *tapirv1.Batch {
		return &tapirv1.Batch{Seq: seq, Epoch: 1, Flows: flows, Blocks: blocks}
	}

	for _, tc := range []struct {
		name    string
		now     time.Time
		expired bool
	}{
		{"real clock", time.Now(), true},
		{"within retention", last.Add(time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := ingesttest.NewMemStore()
			var logs syncBuffer
			reg := prometheus.NewRegistry()
			cfg := DefaultConfig()
			cfg.TLS = pki.Server()
			cfg.HandshakeTimeout, cfg.StopTimeout = time.Second, time.Second
			s, err := New(cfg, Dependencies{Store: store, Registerer: reg, PacketRetention: 7 * 24 * time.Hour,
				Now:    func() time.Time { return tc.now },
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
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
			cc, err := grpc.NewClient(s.Addr().String(), grpc.WithTransportCredentials(clientCreds(t, pki.Sensor(id))))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			st, _, cancel := epochSession(t, cc, id, 1)
			defer cancel()
			for _, seq := range []uint64{1, 2, 1} { // the second 1 is a resend
				m, err := sendBatch(t, st, batch(seq))
				if err != nil || m.GetAck() == nil {
					t.Fatalf("batch %d: %v %v", seq, m, err)
				}
			}
			stored := store.Batches(id)
			if len(stored) != 2 || len(stored[0].Blocks) != len(blocks) || len(stored[1].Records) != len(flows) {
				t.Fatalf("%d batches stored, want 2 whole ones", len(stored))
			}
			got := gaugeValue(t, s.metrics.expiredOnArrival.WithLabelValues(id))
			warnings := strings.Count(logs.String(), "older than the packet retention")
			if !tc.expired {
				if got != 0 || warnings != 0 {
					t.Fatalf("within retention: counter %v, %d warnings\n%s", got, warnings, logs.String())
				}
				return
			}
			if want := float64(2 * tr.Packets); got != want {
				t.Errorf("expired-on-arrival packets %v, want %v (two batches of %d)", got, want, tr.Packets)
			}
			if warnings != 1 || !strings.Contains(logs.String(), "sensor="+id) || !strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("%d warnings, want 1 naming the sensor:\n%s", warnings, logs.String())
			}
			mf, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, f := range mf {
				found = found || f.GetName() == "tapir_collector_ingest_expired_on_arrival_packets_total"
			}
			if !found {
				t.Error("metric not registered")
			}
		})
	}
}
