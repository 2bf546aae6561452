package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/tapir-sensor/tapir/collector/ingest/ingesttest"
	"github.com/tapir-sensor/tapir/internal/tlsconfig"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/pebble"
)

// BenchmarkIngest measures the collector's ingest over loopback gRPC with
// mutual TLS: each op is one batch (the records and blocks derived from
// the community-id-spec tcp+udp captures), sent by 1 or 4 concurrent
// sensors sending pipelined, acked after the store's Write.
func BenchmarkIngest(b *testing.B) {
	for _, backend := range []string{"mem", "pebble"} {
		for _, sensors := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/sensors=%d", backend, sensors), func(b *testing.B) {
				var store storage.Writer = ingesttest.NewMemStore()
				if backend == "pebble" {
					ps, err := pebble.Open(b.TempDir(), pebble.DefaultConfig(), slog.New(slog.DiscardHandler), nil)
					if err != nil {
						b.Fatal(err)
					}
					defer ps.Close()
					store = ps
				}
				benchIngest(b, store, sensors)
			})
		}
	}
}

const benchRep = 64

func benchIngest(b *testing.B, store storage.Writer, sensors int) {
	ids := make([]string, sensors)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%d", i)
	}
	pki := ingesttest.NewPKI(b, ids...)
	cfg := DefaultConfig()
	cfg.TLS = pki.Server()
	srv, err := New(cfg, Dependencies{Store: store, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(lis); err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()

	type sensor struct {
		st      grpc.BidiStreamingClient[tapirv1.SensorMessage, tapirv1.CollectorMessage]
		batches []*tapirv1.Batch
	}
	var flowsPer, bytesPer int
	ss := make([]*sensor, sensors)
	for i, id := range ids {
		tr := ingesttest.CaptureTraffic(b, id, 8)
		// The captures hold few flows: a batch carries them benchRep times
		// to reach a realistic batch size.
		proto := &tapirv1.Batch{}
		bytesPer = 0
		for range benchRep {
			for k := range tr.Records {
				proto.Flows = append(proto.Flows, tapirv1.FromRecord(&tr.Records[k], nil))
			}
			for _, bl := range tr.Blocks {
				proto.Blocks = append(proto.Blocks, &tapirv1.PacketBlock{Data: bl})
				bytesPer += len(bl)
			}
		}
		flowsPer = len(proto.Flows)
		cc, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(clientCredsB(b, pki.Sensor(id))))
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		st, err := tapirv1.NewIngestClient(cc).Stream(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Send(&tapirv1.SensorMessage{Msg: &tapirv1.SensorMessage_Hello{Hello: &tapirv1.Hello{SensorId: id}}}); err != nil {
			b.Fatal(err)
		}
		if m, err := st.Recv(); err != nil || m.GetHelloAck() == nil {
			b.Fatal(m, err)
		}
		ss[i] = &sensor{st: st, batches: []*tapirv1.Batch{proto}}
	}
	per := (b.N + sensors - 1) / sensors
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Add(2)
		go func() { // sender: pipelined, bounded by HTTP/2 flow control
			defer wg.Done()
			tmpl := s.batches[0]
			for seq := 1; seq <= per; seq++ {
				m := &tapirv1.Batch{Seq: uint64(seq), Flows: tmpl.Flows, Blocks: tmpl.Blocks}
				if err := s.st.Send(&tapirv1.SensorMessage{Msg: &tapirv1.SensorMessage_Batch{Batch: m}}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for {
				m, err := s.st.Recv()
				if err != nil {
					b.Error(err)
					return
				}
				if m.GetAck().GetSeq() == uint64(per) {
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	total := float64(per * sensors)
	sec := b.Elapsed().Seconds()
	b.ReportMetric(total*float64(flowsPer)/sec, "flows/s")
	b.ReportMetric(total*float64(bytesPer)/sec/1e6, "blockMB/s")
	b.ReportMetric(total/sec, "batches/s")
}

func clientCredsB(b *testing.B, c tlsconfig.Config) credentials.TransportCredentials {
	tc, err := tlsconfig.Client(c)
	if err != nil {
		b.Fatal(err)
	}
	return credentials.NewTLS(tc)
}
