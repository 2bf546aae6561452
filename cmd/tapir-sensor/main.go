// Command tapir-sensor captures packets from interfaces (AF_PACKET) or
// reads capture files, turns them into flows and packet blocks, and writes
// them locally or streams them to a tapir collector.
//
//	tapir-sensor -r capture.pcap --flows-out - --blocks-out /tmp/blocks
//	tapir-sensor -i eth1 --config /etc/tapir/sensor.yaml
//	tapir-sensor check-config --config /etc/tapir/sensor.yaml
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/tapir-sensor/tapir/internal/tlsconfig"
	buildversion "github.com/tapir-sensor/tapir/internal/version"
	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/config"
	"github.com/tapir-sensor/tapir/sensor/engine"
)

// version is the release version (internal/version, set at link time).
var version = buildversion.Version

func main() {
	if printVersion(os.Args[1:], os.Stdout) {
		return
	}
	os.Exit(withPrintDefaults(run, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command-line flags; set ones override the config file.
type options struct {
	configPath    string
	readFiles     multiFlag
	interfaces    multiFlag
	flowsOut      string
	blocksOut     string
	collectors    multiFlag
	ipfix         string
	sensorID      string
	idleTimeout   time.Duration
	activeTimeout time.Duration
	budget        int64
	snapLen       int
	storeBytes    int
	noMetadata    bool
	workers       int
	filter        string
	seed          int
	logLevel      string
	checkOnly     bool
	spoolDir      string
	tlsDir        string
	insecure      bool
	drainTimeout  time.Duration
	ebpf          bool
	ebpfMapSize   int
	pins          multiFlag
	compression   string
	cpuProfile    string
	mirror        string
	tunnelFilter  string
}

type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*m = append(*m, s)
		}
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	if len(args) > 0 && args[0] == "check-config" {
		o.checkOnly = true
		args = args[1:]
	}
	if code, ok := parseFlags(&o, args, stderr); !ok {
		return code
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(stderr, "tapir-sensor: --log-level: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := loadConfig(&o)
	for _, w := range configWarnings(&o, &cfg) {
		logger.Warn(w)
	}
	if err == nil {
		err = cfg.Validate(len(o.readFiles) == 0)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tapir-sensor: %v\n", err)
		return 2
	}
	if o.checkOnly {
		if err := cfg.CheckFiles(time.Now()); err != nil {
			fmt.Fprintf(stderr, "tapir-sensor: %v\n", err)
			return 2
		}
		fmt.Fprintln(stdout, "configuration ok")
		return 0
	}
	if o.cpuProfile != "" {
		stop, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "tapir-sensor: --cpuprofile: %v\n", err)
			return 2
		}
		defer stop()
	}
	applyMemoryLimit(&cfg, logger)
	cfg.Engine.Decoders = cfg.Decode.Decoders()
	if cfg.Decode.TunnelFilter != "" {
		logger.Info("tunnel filter: packets whose tunnel chain does not match are dropped, counted in tapir_sensor_tunnel_filtered_total",
			"tunnel_filter", cfg.Decode.TunnelFilter)
	}
	if err := runSensor(&o, &cfg, stdout, logger); err != nil {
		logger.Error("sensor failed", "err", err)
		return 1
	}
	return 0
}

// parseFlags parses the command line into o; false and the exit code when
// the run ends here (-h, a bad flag, a stray argument).
func parseFlags(o *options, args []string, stderr io.Writer) (int, bool) {
	fs := flag.NewFlagSet("tapir-sensor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.configPath, "config", "", "YAML configuration file (flags override it)")
	fs.Var(&o.readFiles, "r", "read packets from a pcap/pcapng file (gzip ok, - for stdin); repeatable")
	fs.Var(&o.interfaces, "i", "capture on an interface (AF_PACKET); repeatable or comma-separated")
	fs.StringVar(&o.flowsOut, "flows-out", "", "write flow records as ECS JSON lines to PATH (- for stdout)")
	fs.StringVar(&o.blocksOut, "blocks-out", "", "write packet blocks to segment files in DIR")
	fs.Var(&o.collectors, "collector", "stream to a collector at host:port; repeatable for failover")
	fs.StringVar(&o.ipfix, "ipfix", "", "export flow records as IPFIX over UDP to HOST:PORT (nfcapd, goflow2, ...)")
	fs.StringVar(&o.spoolDir, "spool-dir", "", "spool directory for batches the collector has not acknowledged")
	fs.StringVar(&o.tlsDir, "tls-dir", "", "directory made by 'tapir certs' (ca.pem, sensor-<id>.pem, sensor-<id>-key.pem)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 60*time.Second, "after reading files, wait this long for the collector to acknowledge everything (not output.collector.stop_ack_timeout)")
	fs.StringVar(&o.compression, "compression", "", "block compression: s2 (default) or zstd (= fastest), default, better (zstd levels)")
	fs.BoolVar(&o.insecure, "insecure", false, "stream to the collector in plaintext (local development only)")
	fs.StringVar(&o.sensorID, "sensor-id", "", "sensor id (default: config, else the host name)")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 0, "end flows idle this long (e.g. 60s)")
	fs.DurationVar(&o.activeTimeout, "active-timeout", 0, "end flow instances this long after their start (e.g. 30m)")
	fs.Int64Var(&o.budget, "budget", -1, "capture budget: bytes stored per flow direction (0 = unlimited)")
	fs.IntVar(&o.snapLen, "snaplen", -1, "live capture length: bytes the kernel captures per packet, as tcpdump -s (capture.snap_len; 0 = 262144)")
	fs.IntVar(&o.storeBytes, "store-bytes", -1, "bytes stored per packet at most (flows.store_bytes; 0 = all captured)")
	fs.BoolVar(&o.noMetadata, "no-metadata", false, "do not extract application metadata (DNS, TLS, HTTP, SSH) from flows")
	fs.IntVar(&o.workers, "workers", 0, "workers (fanout sockets) per interface")
	fs.StringVar(&o.filter, "filter", "", "tcpdump-syntax capture filter (live capture)")
	fs.IntVar(&o.seed, "community-seed", -1, "Community ID seed (0-65535)")
	fs.BoolVar(&o.ebpf, "ebpf", false, "eBPF data path: exact kernel flow counters and the capture cut-off (needs --budget; falls back to userspace)")
	fs.IntVar(&o.ebpfMapSize, "ebpf-map-size", 0, "entries of the kernel flow map (ebpf.max_flows)")
	fs.Var(&o.pins, "pin", "capture a flow whole: an address, a CIDR net, port:N or a Community ID; repeatable")
	fs.StringVar(&o.tunnelFilter, "tunnel-filter", "", "keep only packets whose tunnel chain matches, e.g. 'tunnel vxlan and tunnel-id 5001' (decode.tunnel_filter)")
	fs.StringVar(&o.mirror, "mirror", "", "the sources are mirror interfaces: strip the mirror encapsulation vxlan[:PORT], geneve[:PORT], gre or erspan (decode.mirror)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a Go CPU profile of the whole run to FILE (go tool pprof)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: tapir-sensor [check-config] (-r FILE | -i IFACE) [flags]\n       tapir-sensor check-config --print-defaults   (every configuration key with its default, as YAML)\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tapir-sensor: unexpected argument %q\n", fs.Arg(0))
		return 2, false
	}
	return 0, true
}

// loadConfig reads the config file (if any) and applies the flags.
func loadConfig(o *options) (config.Config, error) {
	cfg := config.DefaultConfig()
	if o.configPath != "" {
		var err error
		if cfg, err = config.Load(o.configPath); err != nil {
			return cfg, err
		}
	}
	if o.sensorID != "" {
		cfg.Engine.SensorID = o.sensorID
	} else if o.configPath == "" || cfg.Engine.SensorID == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			cfg.Engine.SensorID = h
		}
	}
	if err := applyEngineFlags(o, &cfg); err != nil {
		return cfg, err
	}
	if err := applyEBPFFlags(o, &cfg); err != nil {
		return cfg, err
	}
	applyCaptureFlags(o, &cfg)
	applyOutputFlags(o, &cfg)
	if o.mirror != "" {
		m, err := config.ParseMirrorFlag(o.mirror)
		if err != nil {
			return cfg, err
		}
		cfg.Decode.Mirror = []config.MirrorSource{m}
	}
	if o.tunnelFilter != "" {
		cfg.Decode.TunnelFilter = o.tunnelFilter
	}
	return cfg, nil
}

// applyEngineFlags applies the flows, blocks, metadata and Community ID
// flags.
func applyEngineFlags(o *options, cfg *config.Config) error {
	if o.idleTimeout != 0 {
		cfg.Engine.Flows.IdleTimeout = o.idleTimeout
	}
	if o.activeTimeout != 0 {
		cfg.Engine.Flows.ActiveTimeout = o.activeTimeout
	}
	if o.budget >= 0 {
		cfg.Engine.Flows.BudgetBytes = o.budget
	}
	if o.storeBytes >= 0 {
		cfg.Engine.Flows.SnapLen = o.storeBytes
	}
	if o.noMetadata {
		cfg.Engine.Metadata.Enabled = false
	}
	if o.compression != "" {
		cfg.Engine.Blocks.Compression = o.compression
	}
	if o.seed >= 0 {
		if o.seed > 65535 {
			return fmt.Errorf("%w: --community-seed %d > 65535", config.ErrInvalid, o.seed)
		}
		cfg.Engine.CommunitySeed = uint16(o.seed)
	}
	return nil
}

// applyCaptureFlags applies the live-capture flags.
func applyCaptureFlags(o *options, cfg *config.Config) {
	if o.snapLen == 0 {
		cfg.Capture.SnapLen = capture.DefaultLiveConfig("").SnapLen // tcpdump's -s 0
	} else if o.snapLen > 0 {
		cfg.Capture.SnapLen = o.snapLen
	}
	if len(o.interfaces) > 0 {
		cfg.Capture.Interfaces = o.interfaces
	}
	if o.workers > 0 {
		cfg.Capture.Workers = o.workers
	}
	if o.filter != "" {
		cfg.Capture.Filter = o.filter
	}
}

// applyOutputFlags applies the output flags (files, collectors, IPFIX).
func applyOutputFlags(o *options, cfg *config.Config) {
	if o.flowsOut != "" {
		cfg.Output.FlowsOut = o.flowsOut
	}
	if o.blocksOut != "" {
		cfg.Output.BlocksOut = o.blocksOut
	}
	if len(o.collectors) > 0 {
		cfg.Output.Collector.Collectors = o.collectors
	}
	if o.ipfix != "" {
		cfg.Output.IPFIX.Collector = o.ipfix
	}
	if o.spoolDir != "" {
		cfg.Output.Collector.Spool.Dir = o.spoolDir
	}
	if o.tlsDir != "" {
		cfg.Output.Collector.TLS = tlsconfig.Config{CAFile: tlsconfig.CAPath(o.tlsDir)}
		cfg.Output.Collector.TLS.CertFile, cfg.Output.Collector.TLS.KeyFile = tlsconfig.Paths(o.tlsDir, "sensor-"+cfg.Engine.SensorID)
	}
	if o.insecure {
		cfg.Output.Collector.TLS = tlsconfig.Config{Insecure: true}
	}
}

// configWarnings are the deprecated keys the config file used and the
// flags that do nothing in this run.
func configWarnings(o *options, cfg *config.Config) []string {
	w := cfg.Deprecated
	if o.snapLen >= 0 && len(o.readFiles) > 0 {
		w = append(w, "--snaplen is the live capture length and does nothing with -r; --store-bytes limits the bytes stored per packet")
	}
	return w
}

// openSources opens the files or the live interfaces.
func openSources(o *options, cfg *config.Config, logger *slog.Logger) ([]capture.Source, error) {
	if len(o.readFiles) > 0 {
		var out []capture.Source
		for _, path := range o.readFiles {
			var (
				s   *capture.FileSource
				err error
			)
			if path == "-" {
				s, err = capture.OpenReader("stdin", os.Stdin)
			} else {
				s, err = capture.OpenFile(path)
			}
			if err != nil {
				for _, p := range out {
					p.Close()
				}
				return nil, fmt.Errorf("open %s: %w", path, err)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return openLive(cfg, logger)
}

// engineCounters are the counters a sensor reports to its collector with
// every batch (the collector's sensor registry shows them).
func engineCounters(st engine.Stats) map[string]uint64 {
	m := map[string]uint64{
		"packets": st.Packets, "wire_bytes": st.WireBytes, "stored_packets": st.StoredPackets,
		"stored_bytes": st.StoredBytes, "blocks": st.Blocks, "block_bytes": st.BlockBytes,
		"records": st.Records, "flows_active": st.Flows.Active, "flows_created": st.Flows.Created,
		"flows_evicted": st.Flows.Evicted(), "budget_cut_packets": st.Flows.BudgetCutPackets,
		"budget_cut_bytes": st.Flows.BudgetCutBytes, "sink_errors": st.SinkErrors,
		"block_errors": st.BlockErrors, "decode_truncated": st.Decode.Truncated,
		"decode_malformed": st.Decode.Malformed,
	}
	for _, s := range st.Sources {
		m["kernel_packets"] += s.KernelPackets
		m["kernel_drops"] += s.KernelDrops
		m["kernel_freezes"] += s.QueueFreezes
	}
	return m
}

// startCPUProfile starts a CPU profile written to path and returns the
// function that stops it and closes the file.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
