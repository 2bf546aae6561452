package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/sensor/config"
	"github.com/tapir-sensor/tapir/sensor/ebpf"
)

// applyEBPFFlags applies --ebpf, --ebpf-map-size and --pin, and makes the
// flow table's budget the cut-off's (one budget for both paths).
func applyEBPFFlags(o *options, cfg *config.Config) error {
	if o.ebpf {
		cfg.EBPF.Enable = true
	}
	if o.ebpfMapSize > 0 {
		cfg.EBPF.MaxFlows = o.ebpfMapSize
	}
	for _, p := range o.pins {
		addPin(&cfg.EBPF.Pins, p)
	}
	if cfg.EBPF.BudgetBytes > 0 && o.budget < 0 {
		cfg.Engine.Flows.BudgetBytes = cfg.EBPF.BudgetBytes
	}
	if _, err := ebpf.NewPins(cfg.EBPF.Pins, 0); err != nil {
		return fmt.Errorf("%w: --pin: %v", config.ErrInvalid, err)
	}
	return nil
}

// addPin adds one pin written as an address or CIDR net, "port:N" (or
// "port N"), "host X" / "net X", or a Community ID. It reports whether it
// understood the pin.
func addPin(pc *ebpf.PinConfig, s string) bool {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "1:"):
		pc.CommunityIDs = append(pc.CommunityIDs, s)
		return true
	case strings.HasPrefix(s, "port:") || strings.HasPrefix(s, "port "):
		n, err := strconv.ParseUint(strings.TrimSpace(s[5:]), 10, 16)
		if err != nil {
			return false
		}
		pc.Ports = append(pc.Ports, uint16(n))
		return true
	case strings.HasPrefix(s, "host ") || strings.HasPrefix(s, "net "):
		_, v, _ := strings.Cut(s, " ")
		pc.Nets = append(pc.Nets, strings.TrimSpace(v))
		return true
	case s != "" && !strings.ContainsAny(s, " "):
		pc.Nets = append(pc.Nets, s)
		return true
	}
	return false
}

// startEBPF loads the eBPF data path for a live run with ebpf.enable. When
// it cannot (no capture budget, a capture filter, no CAP_BPF, an old
// kernel) it logs one line and returns nil: the flow table then runs the
// same budget in userspace. Pins apply on both paths.
func startEBPF(o *options, cfg *config.Config, logger *slog.Logger, reg prometheus.Registerer) *ebpf.Datapath {
	if !cfg.EBPF.Enable || len(o.readFiles) > 0 {
		return nil
	}
	pins, _ := ebpf.NewPins(cfg.EBPF.Pins, cfg.Engine.CommunitySeed)
	if !pins.Empty() {
		cfg.Engine.Flows.BudgetExempt = pins.Match
	}
	fallback := func(reason string, err error) *ebpf.Datapath {
		logger.Warn("eBPF data path off; the capture budget runs in userspace", "reason", reason, "err", err)
		return nil
	}
	if cfg.Engine.Flows.BudgetBytes <= 0 {
		return fallback("no capture budget (set --budget or ebpf.budget_bytes)", nil)
	}
	if cfg.Capture.Filter != "" {
		return fallback("a capture filter is set (a socket holds one filter)", nil)
	}
	mirrorPort, conflict := cfg.Decode.KernelCutoff(cfg.Capture.Interfaces)
	if conflict != "" {
		return fallback(conflict, nil)
	}
	dp, err := ebpf.New(cfg.EBPF, ebpf.Params{BudgetBytes: cfg.Engine.Flows.BudgetBytes,
		SnapLen: cfg.Engine.Flows.SnapLen, CommunitySeed: cfg.Engine.CommunitySeed, MirrorVXLANPort: mirrorPort},
		ebpf.Dependencies{Logger: logger, Registerer: reg})
	if err != nil {
		return fallback("configuration", err)
	}
	if err := dp.Start(cfg.Capture.Interfaces); err != nil {
		return fallback("cannot load (needs CAP_BPF and CAP_NET_ADMIN, Linux 6.6+)", err)
	}
	cfg.Capture.EBPFFilter = dp.SocketFilterFD()
	cfg.Engine.Flows.BudgetExempt = func(k *flow.Key) bool { return dp.Pins().Match(k) }
	return dp
}

// onPushedConfig applies the pinned flows a collector pushes (Community
// IDs, addresses, "host X", "net X", "port N"; other query expressions are
// logged and ignored). Without the eBPF data path it does nothing.
func onPushedConfig(dp *ebpf.Datapath, logger *slog.Logger) func(*tapirv1.SensorConfig) {
	if dp == nil {
		return nil
	}
	return func(c *tapirv1.SensorConfig) {
		var pc ebpf.PinConfig
		for _, p := range c.GetPinned() {
			if !addPin(&pc, p) {
				logger.Warn("pushed pin not understood; ignored", "pin", p)
			}
		}
		if err := dp.SetPins(pc); err != nil {
			logger.Warn("pushed pins", "err", err)
			return
		}
		logger.Info("pins pushed by the collector", "nets", len(pc.Nets), "ports", len(pc.Ports), "community_ids", len(pc.CommunityIDs))
	}
}
