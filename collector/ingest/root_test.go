package ingest

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tapir-sensor/tapir/collector/ingest/ingesttest"
	"github.com/tapir-sensor/tapir/internal/tlsconfig"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
)

func TestDefaultConfigValidates(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.TLS.Insecure = true
	if err := c.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	if err := DefaultConfig().ValidateAll(); err == nil {
		t.Fatal("no TLS files and no insecure: accepted")
	}
}

func startServer(t *testing.T, tlsCfg tlsconfig.Config, store *ingesttest.MemStore) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.TLS = tlsCfg
	cfg.HelloTimeout = 500 * time.Millisecond
	cfg.HandshakeTimeout = time.Second
	cfg.StopTimeout = time.Second
	s, err := New(cfg, Dependencies{Store: store, Registerer: prometheus.NewRegistry()})
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

// session opens a stream with the credentials and sends a hello claiming
// id; it returns the first message or error.
func session(t *testing.T, addr string, creds credentials.TransportCredentials, id string) (grpc.BidiStreamingClient[tapirv1.SensorMessage, tapirv1.CollectorMessage], *tapirv1.CollectorMessage, error) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	st, err := tapirv1.NewIngestClient(cc).Stream(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := st.Send(&tapirv1.SensorMessage{Msg: &tapirv1.SensorMessage_Hello{Hello: &tapirv1.Hello{SensorId: id}}}); err != nil {
		_, err = st.Recv()
		return nil, nil, err
	}
	m, err := st.Recv()
	return st, m, err
}

func clientCreds(t *testing.T, c tlsconfig.Config) credentials.TransportCredentials {
	tc, err := tlsconfig.Client(c)
	if err != nil {
		t.Fatal(err)
	}
	return credentials.NewTLS(tc)
}

// goodSensor checks that a legitimate sensor can still store a batch.
func goodSensor(t *testing.T, s *Server, pki *ingesttest.PKI, store *ingesttest.MemStore, tr *ingesttest.Traffic, seq uint64) {
	t.Helper()
	st, m, err := session(t, s.Addr().String(), clientCreds(t, pki.Sensor("good")), "good")
	if err != nil || m.GetHelloAck() == nil {
		t.Fatalf("good sensor refused: %v %v", m, err)
	}
	b := &tapirv1.Batch{Seq: seq, Flows: []*tapirv1.FlowRecord{tapirv1.FromRecord(&tr.Records[0], nil)},
		Blocks: []*tapirv1.PacketBlock{{Data: tr.Blocks[0]}}}
	if err := st.Send(&tapirv1.SensorMessage{Msg: &tapirv1.SensorMessage_Batch{Batch: b}}); err != nil {
		t.Fatal(err)
	}
	m, err = st.Recv()
	if err != nil || m.GetAck().GetSeq() != seq {
		t.Fatalf("ack: %v %v", m, err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if n := len(store.Batches("good")); n == 0 {
		t.Fatal("batch not stored")
	}
}

func TestSecurity(t *testing.T) {
	pki := ingesttest.NewPKI(t, "good", "other")
	otherCA := ingesttest.NewPKI(t, "good")
	store := ingesttest.NewMemStore()
	tr := ingesttest.CaptureTraffic(t, "good", 4)
	s := startServer(t, pki.Server(), store)
	addr := s.Addr().String()

	// A sensor certificate from another CA.
	foreign := otherCA.Sensor("good")
	foreign.CAFile = pki.Sensor("good").CAFile // it trusts our server
	refused := func() float64 {
		var m dto.Metric
		if err := s.metrics.streams.WithLabelValues("refused_tls").Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	before := refused()
	if _, _, err := session(t, addr, clientCreds(t, foreign), "good"); status.Code(err) != codes.Unavailable {
		t.Errorf("certificate from another CA: %v", err)
	}
	// The server counts the refusal after its side of the handshake
	// fails, which may come after the client has seen the alert.
	for deadline := time.Now().Add(5 * time.Second); refused() <= before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if refused() <= before {
		t.Error("a handshake refused for a certificate from another CA was not counted")
	}
	// A valid sensor claiming another id.
	if _, _, err := session(t, addr, clientCreds(t, pki.Sensor("other")), "good"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("hello claiming another id: %v", err)
	}
	// Plaintext against the TLS port.
	if _, _, err := session(t, addr, insecure.NewCredentials(), "good"); err == nil {
		t.Error("plaintext client accepted")
	}
	// Garbage bytes, an HTTP/1 request, a TLS client without certificate,
	// a connection that never speaks.
	// What the server answers them is not under test (it may hang up
	// mid-write), only that it still serves a good sensor afterwards.
	raw := dial(t, addr)
	_, _ = raw.Write([]byte(strings.Repeat("\x00\xff garbage \x16\x03\x01", 1000)))
	raw.Close()
	silent := dial(t, addr)
	defer silent.Close()
	h := dial(t, addr)
	fmt.Fprintf(h, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	_, _ = http.ReadResponse(bufio.NewReader(h), nil)
	h.Close()
	tc, err := tlsconfig.Client(pki.Sensor("good"))
	if err != nil {
		t.Fatal(err)
	}
	tc.Certificates = nil
	if c, err := tls.Dial("tcp", addr, tc); err == nil {
		_, _ = c.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
		if _, err := io.ReadAll(c); err == nil {
			t.Log("certless TLS connection closed without error")
		}
		c.Close()
	}
	// A stream that sends no hello times out.
	cc, _ := grpc.NewClient(addr, grpc.WithTransportCredentials(clientCreds(t, pki.Sensor("good"))))
	defer cc.Close()
	st, err := tapirv1.NewIngestClient(cc).Stream(context.Background())
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("no hello: %v", err)
	}
	// The server still serves a good sensor.
	goodSensor(t, s, pki, store, tr, 1)
}

func TestRejectsBadBatch(t *testing.T) {
	pki := ingesttest.NewPKI(t, "good")
	store := ingesttest.NewMemStore()
	tr := ingesttest.CaptureTraffic(t, "good", 4)
	s := startServer(t, pki.Server(), store)
	st, _, err := session(t, s.Addr().String(), clientCreds(t, pki.Sensor("good")), "good")
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), tr.Blocks[0]...)
	bad[0] = 'X'
	if err := st.Send(&tapirv1.SensorMessage{Msg: &tapirv1.SensorMessage_Batch{Batch: &tapirv1.Batch{Seq: 9, Blocks: []*tapirv1.PacketBlock{{Data: bad}}}}}); err != nil {
		t.Fatal(err)
	}
	_, err = st.Recv()
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad block: %v", err)
	}
	if v := st.Trailer().Get(TrailerRejectedSeq); len(v) != 1 || v[0] != "9" {
		t.Errorf("trailer %v", st.Trailer())
	}
	if sn, _ := s.Registry().Sensor("good"); sn.Rejected != 1 {
		t.Errorf("rejected count %d", sn.Rejected)
	}
	if len(store.Batches("good")) != 0 {
		t.Error("bad batch stored")
	}
	goodSensor(t, s, pki, store, tr, 10)
}

// dial opens a plain TCP connection to addr.
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
