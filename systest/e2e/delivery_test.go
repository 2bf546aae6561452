package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/collector/ingest/ingesttest"
	"github.com/tapir-sensor/tapir/collector/registry"
	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/internal/tlsconfig"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
)

// sensorRun runs tapir-sensor on a file to col as id with spool dir
// spool, and returns its exit code and log.
func sensorRun(t *testing.T, col *collector, id, spool, file string, extra ...string) (int, string) {
	t.Helper()
	args := append([]string{bin.sensor, "-r", file}, col.sensorArgs(id, spool)...)
	args = append(append(args, longTimeouts...), extra...)
	p := startProc(t, args...)
	code, ok := p.Wait(120 * time.Second)
	if !ok {
		t.Fatalf("tapir-sensor %s did not finish:\n%s", filepath.Base(file), e2etest.LastLines(p.Log.String(), 15))
	}
	return code, p.Log.String()
}

// sensors lists the collector's registry (tapir sensors --json).
func (c *collector) sensors(t *testing.T) map[string]registry.SensorStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, stderr, err := c.tapir(ctx, "sensors", "--json")
	if err != nil {
		t.Fatalf("tapir sensors: %v\n%s", err, stderr)
	}
	var list []registry.SensorStatus
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("tapir sensors: %v\n%s", err, out)
	}
	m := map[string]registry.SensorStatus{}
	for _, s := range list {
		m[s.ID] = s
	}
	return m
}

// sensorConn dials the collector's ingest port with sensor id's
// certificate.
func (c *collector) sensorConn(t *testing.T, id string) *grpc.ClientConn {
	t.Helper()
	cert, key := tlsconfig.Paths(c.pki.dir, "sensor-"+id)
	tc, err := tlsconfig.Client(tlsconfig.Config{CAFile: c.pki.ca(), CertFile: cert, KeyFile: key})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(c.ingest, grpc.WithTransportCredentials(credentials.NewTLS(tc)),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// TestSensorIDReusedWithFreshSpool: a sensor id streamed again from a
// fresh spool (a reinstalled host, a wiped disk, or several hosts sharing
// one id) has all its data stored: its batches start again at seq 1 in a
// new epoch and are never taken for the old spool's. The issue's
// reproduction: wikipedia.pcap from spool S1, then
// tls-conn-with-extensions.pcap (58 packets) and echo-connections (500
// flows) from fresh spools under the same id.
func TestSensorIDReusedWithFreshSpool(t *testing.T) {
	needBinaries(t)
	testenv.Tool(t, "tshark")
	work := t.TempDir()
	p := newPKI(t, filepath.Join(work, "certs"), "A")
	col := newCollector(t, filepath.Join(work, "collector"), p)
	for i, rel := range []string{"zeek/wikipedia.pcap", "zeek/tls-conn-with-extensions.pcap", "zeek/echo-connections.pcap.gz"} {
		file := testenv.Pcap(t, rel)
		want := offlineFlows(t, file, "A")
		code, log := sensorRun(t, col, "A", filepath.Join(work, fmt.Sprintf("spool%d", i+1)), file, "--drain-timeout", "20s")
		if code != 0 || strings.Contains(log, "not acknowledged everything") {
			t.Fatalf("%s from a fresh spool: exit %d\n%s", rel, code, e2etest.LastLines(log, 10))
		}
		frames, _ := readFrames(t, file)
		compareFlowSets(t, rel+" from a fresh spool under a reused id", want, collectorFlows(t, col, frames, "A"))
		t.Logf("%s: %d flows, all stored", rel, len(want))
	}
}

// TestTwoLiveSpoolsOneID: two sensors stream at the same time under one
// id from different spools (deploy/k8s with a shared id): both are kept
// apart and every flow of both is stored (the unit test TestEpochs checks
// that overlapping streams of two epochs are counted).
func TestTwoLiveSpoolsOneID(t *testing.T) {
	needBinaries(t)
	testenv.Tool(t, "tshark")
	work := t.TempDir()
	p := newPKI(t, filepath.Join(work, "certs"), "shared")
	col := newCollector(t, filepath.Join(work, "collector"), p)
	files := []string{testenv.Pcap(t, "zeek/wikipedia.pcap"), testenv.Pcap(t, "zeek/get.pcap")}
	procs := make([]*e2etest.Proc, len(files))
	for i, f := range files {
		args := append([]string{bin.sensor, "-r", f, "--drain-timeout", "30s"}, col.sensorArgs("shared", filepath.Join(work, fmt.Sprint("spool", i)))...)
		procs[i] = startProc(t, append(args, longTimeouts...)...)
	}
	for i, pr := range procs {
		if code, ok := pr.Wait(120 * time.Second); !ok || code != 0 {
			t.Fatalf("sensor %d: exit %d\n%s", i, code, e2etest.LastLines(pr.Log.String(), 10))
		}
	}
	for _, f := range files {
		frames, _ := readFrames(t, f)
		compareFlowSets(t, filepath.Base(f)+" under a shared id", offlineFlows(t, f, "shared"), collectorFlows(t, col, frames, "shared"))
	}
}

// TestNoLeakedStreams: with ingest.max_streams 2, five consecutive
// sensor runs are all served, and after 300 connect/disconnect cycles of
// every kind the collector has no stream open (metrics) and its registry
// shows the sensor disconnected.
func TestNoLeakedStreams(t *testing.T) {
	needBinaries(t)
	work := t.TempDir()
	p := newPKI(t, filepath.Join(work, "certs"), "leak")
	col := prepareCollector(t, filepath.Join(work, "collector"), p)
	col.ingestExtra = "  max_streams: 2\n  hello_timeout: 1s\n"
	col.start()
	file := testenv.Pcap(t, "zeek/get.pcap")
	for i := range 5 {
		code, log := sensorRun(t, col, "leak", filepath.Join(work, "spool"), file, "--drain-timeout", "10s")
		if code != 0 || strings.Contains(log, "not acknowledged everything") {
			t.Fatalf("run %d of 5 with max_streams 2: exit %d\n%s", i+1, code, e2etest.LastLines(log, 10))
		}
	}
	cc := col.sensorConn(t, "leak")
	hello := &tapirv1.SensorMessage{Msg: &tapirv1.SensorMessage_Hello{Hello: &tapirv1.Hello{SensorId: "leak", Epoch: 1}}}
	const cycles = 300
	for i := range cycles {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := tapirv1.NewIngestClient(cc).Stream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch i % 4 {
		case 0: // hello, ack, then the process dies
			_ = st.Send(hello)
			if _, err := st.Recv(); err != nil {
				t.Fatalf("cycle %d: %v", i, err)
			}
		case 1: // hello, then a clean close
			_ = st.Send(hello)
			_, _ = st.Recv()
			_ = st.CloseSend()
			_, _ = st.Recv()
		case 2: // a close before the hello
			_ = st.CloseSend()
			_, _ = st.Recv()
		case 3: // gone at once
		}
		cancel()
		// The collector must notice each departure: with two slots, a
		// leak refuses the next streams.
		deadline := time.Now().Add(5 * time.Second)
		for col.metric(t, "tapir_collector_ingest_active_streams", "") != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("cycle %d (kind %d): the stream is still open 5 s after its sensor left", i, i%4)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if active := col.metric(t, "tapir_collector_ingest_active_streams", ""); active != 0 {
		t.Fatalf("%v streams still open after %d connect/disconnect cycles", active, cycles)
	}
	s := col.sensors(t)["leak"]
	if s.Connected || s.Streams != 0 {
		t.Fatalf("registry after every sensor left: connected %v, streams %d", s.Connected, s.Streams)
	}
	// A sensor is still served.
	if code, log := sensorRun(t, col, "leak", filepath.Join(work, "spool"), file, "--drain-timeout", "10s"); code != 0 {
		t.Fatalf("a sensor after the cycles: exit %d\n%s", code, e2etest.LastLines(log, 10))
	}
}

// TestHonestExits: a sensor that cannot deliver says why and exits
// non-zero, fast (well before --drain-timeout), instead of retrying a
// permanent refusal and exiting 0: a certificate from another CA, a
// sensor id that is not the certificate's, a missing certificate. Its
// data stays in the spool.
func TestHonestExits(t *testing.T) {
	needBinaries(t)
	work := t.TempDir()
	p := newPKI(t, filepath.Join(work, "certs"), "demo")
	col := newCollector(t, filepath.Join(work, "collector"), p)
	file := testenv.Pcap(t, "zeek/get.pcap")
	other := newPKI(t, filepath.Join(work, "other-ca"), "demo")
	// Another CA's sensor certificate, trusting our server.
	otherDir := filepath.Join(work, "other-sensor")
	copyFiles(t, otherDir, map[string]string{
		filepath.Join(p.dir, "ca.pem"):                  "ca.pem",
		filepath.Join(other.dir, "sensor-demo.pem"):     "sensor-demo.pem",
		filepath.Join(other.dir, "sensor-demo-key.pem"): "sensor-demo-key.pem",
	})
	borrowed := filepath.Join(work, "borrowed")
	copyFiles(t, borrowed, map[string]string{
		filepath.Join(p.dir, "ca.pem"):              "ca.pem",
		filepath.Join(p.dir, "sensor-demo.pem"):     "sensor-thief.pem",
		filepath.Join(p.dir, "sensor-demo-key.pem"): "sensor-thief-key.pem",
	})
	missing := filepath.Join(work, "missing")
	copyFiles(t, missing, map[string]string{filepath.Join(p.dir, "ca.pem"): "ca.pem"})
	cases := []struct {
		name, id, tlsDir, says string
	}{
		{"certificate from another CA", "demo", otherDir, "refused"},
		{"sensor id not the certificate's", "thief", borrowed, "PermissionDenied"},
		{"missing certificate", "demo", missing, "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{bin.sensor, "-r", file, "--sensor-id", c.id, "--collector", col.ingest, "--tls-dir", c.tlsDir,
				"--spool-dir", filepath.Join(work, "spool-"+c.id+filepath.Base(c.tlsDir)), "--drain-timeout", "60s"}
			start := time.Now()
			pr := startProc(t, args...)
			code, ok := pr.Wait(50 * time.Second)
			took := time.Since(start)
			log := pr.Log.String()
			if !ok {
				t.Fatalf("still running after %v (retrying a permanent error?)\n%s", took, e2etest.LastLines(log, 10))
			}
			if code == 0 {
				t.Fatalf("exit 0 although nothing was delivered\n%s", e2etest.LastLines(log, 10))
			}
			if !strings.Contains(log, c.says) {
				t.Errorf("the log does not say %q:\n%s", c.says, e2etest.LastLines(log, 10))
			}
			t.Logf("exit %d after %v:\n%s", code, took.Round(time.Millisecond), e2etest.LastLines(log, 3))
		})
	}
}

func copyFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for src, dst := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

var finishedRE = regexp.MustCompile(`msg="capture finished" packets=(\d+) flows=(\d+) records=(\d+) blocks=(\d+)`)

// TestFinalCountersReachRegistry: after a file run, the collector's
// registry holds the sensor's final counters (packets read, flows
// created, records, blocks, no flow still active), equal to what the
// sensor itself reports at exit.
func TestFinalCountersReachRegistry(t *testing.T) {
	needBinaries(t)
	work := t.TempDir()
	p := newPKI(t, filepath.Join(work, "certs"), "count")
	col := newCollector(t, filepath.Join(work, "collector"), p)
	file := testenv.Pcap(t, "zeek/echo-connections.pcap.gz")
	code, log := sensorRun(t, col, "count", filepath.Join(work, "spool"), file, "--drain-timeout", "20s")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, e2etest.LastLines(log, 10))
	}
	m := finishedRE.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no capture finished line:\n%s", e2etest.LastLines(log, 10))
	}
	want := map[string]string{"packets": m[1], "flows_created": m[2], "records": m[3], "blocks": m[4], "flows_active": "0"}
	st := col.sensors(t)["count"].Stats
	for k, w := range want {
		if got := strconv.FormatUint(st[k], 10); got != w {
			t.Errorf("registry %s = %s, the sensor's final count is %s", k, got, w)
		}
	}
}

// TestCorruptSpoolBatchSkipped: one flipped byte in a spooled batch
// loses that batch only: the run that opens the spool logs the segment
// and offset, delivers the batches after it, counts the loss and exits
// non-zero.
func TestCorruptSpoolBatchSkipped(t *testing.T) {
	needBinaries(t)
	testenv.Tool(t, "tshark")
	work := t.TempDir()
	p := newPKI(t, filepath.Join(work, "certs"), "flip")
	col := prepareCollector(t, filepath.Join(work, "collector"), p)
	col.ingest, col.api, col.mets = freePort(t), freePort(t), freePort(t)
	spool := filepath.Join(work, "spool")
	// A run with no collector spools two files in two batches: the first
	// closed by its block count, the second with the rest of the blocks
	// and echo-connections' flow records.
	first, second := testenv.Pcap(t, "zeek/get.pcap"), testenv.Pcap(t, "zeek/echo-connections.pcap.gz")
	code, log := sensorRun(t, col, "flip", spool, first, "-r", second, "--drain-timeout", "1s")
	if code != 0 || !strings.Contains(log, "not acknowledged everything") {
		t.Fatalf("spooling run: exit %d\n%s", code, e2etest.LastLines(log, 10))
	}
	segs, _ := filepath.Glob(filepath.Join(spool, "seg-*.spool"))
	if len(segs) != 1 {
		t.Fatalf("%d spool segments, want 1", len(segs))
	}
	// Flip one byte in the payload of the segment's first batch.
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	const magicLen, headerLen = 8, 16
	n := int(binary.LittleEndian.Uint32(data[magicLen:]))
	if magicLen+headerLen+n >= len(data) {
		t.Fatalf("the segment holds one batch (%d of %d bytes): nothing after it to keep", n, len(data))
	}
	// The flows whose records ride in the batch about to be corrupted are
	// the only ones allowed to be missing afterwards. Which flows those
	// are depends on when the exporter closed the batch (its size and age
	// limits), so read them from the batch itself.
	var lost tapirv1.Batch
	if err := proto.Unmarshal(data[magicLen+headerLen:magicLen+headerLen+n], &lost); err != nil {
		t.Fatalf("decode the first spooled batch: %v", err)
	}
	lostFlows := map[string]bool{}
	for _, f := range lost.GetFlows() {
		lostFlows[f.GetCommunityId()+"@"+time.Unix(0, f.GetStartUnixNano()).UTC().Format(time.RFC3339Nano)] = true
	}
	data[magicLen+headerLen+n/2] ^= 0x40
	if err := os.WriteFile(segs[0], data, 0o640); err != nil {
		t.Fatal(err)
	}
	col.start()
	code, log = sensorRun(t, col, "flip", spool, testenv.Pcap(t, "zeek/ssh.pcap"), "--drain-timeout", "20s")
	if code == 0 {
		t.Errorf("exit 0 although a spooled batch was lost\n%s", e2etest.LastLines(log, 10))
	}
	if !strings.Contains(log, "corrupt batch skipped") || !strings.Contains(log, "segment="+segs[0]) || !strings.Contains(log, "offset=8") {
		t.Errorf("no error naming the segment and offset:\n%s", e2etest.LastLines(log, 15))
	}
	// Every flow outside the corrupt batch arrived: the batches after it
	// (echo-connections' flow records, all or most of them) and the new
	// run's.
	kept := 0
	for _, f := range []string{second, testenv.Pcap(t, "zeek/ssh.pcap")} {
		frames, _ := readFrames(t, f)
		want := offlineFlows(t, f, "flip")
		for k := range want {
			if lostFlows[k] {
				delete(want, k)
			} else if f == second {
				kept++
			}
		}
		compareFlowSets(t, filepath.Base(f)+" after a corrupt spooled batch", want, collectorFlows(t, col, frames, "flip"))
	}
	if kept == 0 {
		t.Fatalf("the corrupt batch held every flow of %s: nothing after it was tested", second)
	}
	t.Logf("the corrupt batch held %d flow records; %d flows of %s were in later batches", len(lostFlows), kept, filepath.Base(second))
}

// peakRSS returns a process's peak resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// bigBatches opens n streams at once with id's certificate, each sending
// one batch with a 15 MB interface name, and returns how many streams
// were refused with ResourceExhausted and how many batches with
// InvalidArgument.
func bigBatches(t *testing.T, col *collector, ids []string) (exhausted, invalid int) {
	t.Helper()
	// A real flow record (from a shared capture) with a 15 MB interface name.
	tr := ingesttest.CaptureTraffic(t, "", 4)
	rec := tapirv1.FromRecord(&tr.Records[0], nil)
	rec.SensorId = ""
	rec.Interface = strings.Repeat("x", 15<<20)
	res := make(chan error, len(ids))
	conns := map[string]*grpc.ClientConn{}
	for _, id := range ids {
		if conns[id] == nil {
			conns[id] = col.sensorConn(t, id)
		}
	}
	for i, id := range ids {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			st, err := tapirv1.NewIngestClient(conns[id]).Stream(ctx)
			if err != nil {
				res <- err
				return
			}
			_ = st.Send(&tapirv1.SensorMessage{Msg: &tapirv1.SensorMessage_Hello{Hello: &tapirv1.Hello{SensorId: id, Epoch: 1}}})
			if _, err := st.Recv(); err != nil {
				res <- err
				return
			}
			_ = st.Send(&tapirv1.SensorMessage{Msg: &tapirv1.SensorMessage_Batch{Batch: &tapirv1.Batch{Seq: uint64(i + 1), Epoch: 1,
				Flows: []*tapirv1.FlowRecord{rec}}}})
			_, err = st.Recv()
			res <- err
		}()
	}
	for range ids {
		switch err := <-res; status.Code(err) {
		case codes.ResourceExhausted:
			exhausted++
		case codes.InvalidArgument:
			invalid++
		default:
			t.Errorf("a 15 MB batch: %v", err)
		}
	}
	return exhausted, invalid
}

// TestBigBatchesBounded: the reproduction, 40 parallel streams
// of one sensor certificate each sending one 15 MB batch (a 15 MB
// interface name), took the collector from 0.2 to 1.9 GB and stored the
// name. Now at most max_streams_per_sensor of them are admitted, the
// oversized string is refused with InvalidArgument and counted, and the
// collector's peak memory stays low. Then 10 sensors with their own
// certificates do the same against a 64 MiB in-flight budget.
func TestBigBatchesBounded(t *testing.T) {
	needBinaries(t)
	work := t.TempDir()
	ids := []string{"big"}
	for i := range 10 {
		ids = append(ids, fmt.Sprint("fleet", i))
	}
	p := newPKI(t, filepath.Join(work, "certs"), ids...)
	col := prepareCollector(t, filepath.Join(work, "collector"), p)
	col.ingestExtra = "  max_inflight_bytes: 67108864\n  max_streams_per_sensor: 4\n"
	col.start()
	pid := col.proc.Cmd.Process.Pid
	before := peakRSS(t, pid)

	one := make([]string, 40)
	for i := range one {
		one[i] = "big"
	}
	exhausted, invalid := bigBatches(t, col, one)
	peakOne := peakRSS(t, pid)
	t.Logf("40 streams of one certificate: %d refused (stream limit), %d batches refused (size limit); peak RSS %d -> %d MiB",
		exhausted, invalid, before>>20, peakOne>>20)
	if exhausted < 40-4 || invalid+exhausted != 40 {
		t.Errorf("40 streams of one sensor: %d refused for the stream limit, %d for the size limit", exhausted, invalid)
	}
	if over := col.metric(t, "tapir_collector_ingest_over_limit_batches_total", ""); over != float64(invalid) {
		t.Errorf("over-limit batches counted %v, refused %d", over, invalid)
	}
	if peakOne > 400<<20 {
		t.Errorf("peak RSS %d MiB with one sensor's 40 streams", peakOne>>20)
	}
	exhausted, invalid = bigBatches(t, col, ids[1:])
	t.Logf("10 sensors, one 15 MB batch each, 64 MiB budget: %d refused (stream limit), %d refused (size limit), %v budget waits; peak RSS %d MiB",
		exhausted, invalid, col.metric(t, "tapir_collector_ingest_budget_waits_total", ""), peakRSS(t, pid)>>20)
	if exhausted != 0 || invalid != 10 {
		t.Errorf("10 sensors: %d refused for the stream limit, %d for the size limit; want 0 and 10", exhausted, invalid)
	}
	if n := col.metric(t, "tapir_collector_ingest_batches_total", `result="stored"`); n != 0 {
		t.Errorf("%v oversized batches stored", n)
	}
}
