//go:build linux

package ebpf

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/bpf"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/sensor/output"
)

// Params are the settings the data path shares with the flow table.
type Params struct {
	// BudgetBytes is the capture budget per flow direction (required > 0
	// for the cut-off to drop anything).
	BudgetBytes int64
	// SnapLen is the flow table's snap length (0 = none): stored bytes
	// are counted after it, as the flow table counts them.
	SnapLen int
	// CommunitySeed is the sensor's Community ID seed (for pins).
	CommunitySeed uint16
	// MirrorVXLANPort, when not 0, says every capture interface is a
	// VXLAN mirror interface on that UDP port (decode.mirror): the
	// program strips the mirror encapsulation and keys the mirrored
	// connections with the mirror key, as the decoder does.
	MirrorVXLANPort uint16
}

// Dependencies of a Datapath.
type Dependencies struct {
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer for metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Datapath is the loaded eBPF data path. See the package doc.
type Datapath struct {
	cfg    Config
	params Params
	log    *slog.Logger
	reg    prometheus.Registerer

	objs   bpf.TapirObjects
	kernel *mapKernel
	events *ringbuf.Reader

	pinMu   sync.Mutex
	pins    atomic.Pointer[Pins]
	pinGen  uint32
	sinks   []*MergeSink
	sinksMu sync.Mutex

	drainedIdle atomic.Uint64
	entries     atomic.Uint64
	fullLogged  atomic.Int64

	started  bool
	stopOnce sync.Once
	done     chan struct{}
	wg       sync.WaitGroup
}

// New validates the configuration; it loads nothing.
func New(cfg Config, params Params, deps Dependencies) (*Datapath, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if params.BudgetBytes <= 0 {
		return nil, fmt.Errorf("%w: the cut-off needs a capture budget (ebpf.budget_bytes or flows.budget_bytes)", ErrInvalidConfig)
	}
	pins, err := NewPins(cfg.Pins, params.CommunitySeed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Datapath{cfg: cfg, params: params, log: deps.Logger.With("component", "ebpf"),
		reg: deps.Registerer, done: make(chan struct{})}
	d.pins.Store(pins)
	return d, nil
}

// Pins returns the current pins (for the flow table's BudgetExempt).
func (d *Datapath) Pins() *Pins { return d.pins.Load() }

// Start loads the program with the configured map size, checks that the
// interfaces exist, and starts the event reader and the drain loop. It
// must run in the network namespace of the interfaces. The program does
// its work once attached to the capture sockets (SocketFilterFD); it
// needs no hook on the interfaces. On error nothing stays loaded, and the
// caller falls back to the userspace budget.
func (d *Datapath) Start(ifaces []string) (err error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("remove memlock limit: %w", err)
	}
	spec, err := bpf.LoadTapir()
	if err != nil {
		return fmt.Errorf("load spec: %w", err)
	}
	spec.Maps[mapFlows].MaxEntries = uint32(d.cfg.MaxFlows)
	if err := spec.Variables[bpf.TapirVarTapirMirrorVxlanPort].Set(d.params.MirrorVXLANPort); err != nil {
		return fmt.Errorf("set the mirror port: %w", err)
	}
	if err := spec.LoadAndAssign(&d.objs, nil); err != nil {
		var ve *cebpf.VerifierError
		if errors.As(err, &ve) {
			return fmt.Errorf("load programs: %w", ve)
		}
		return fmt.Errorf("load programs: %w", err)
	}
	defer func() {
		if err != nil {
			d.closeAll()
		}
	}()
	d.kernel = newMapKernel(d.objs.TapirFlows)
	if err := d.writeConfig(); err != nil {
		return err
	}
	if err := d.loadPins(d.pins.Load()); err != nil {
		return err
	}
	for _, name := range ifaces {
		if _, err := net.InterfaceByName(name); err != nil {
			return fmt.Errorf("interface %s: %w", name, err)
		}
	}
	if d.events, err = ringbuf.NewReader(d.objs.TapirEvents); err != nil {
		return fmt.Errorf("open ring buffer: %w", err)
	}
	if d.reg != nil {
		if err := d.reg.Register(newCollector(d)); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	d.started = true
	d.wg.Add(2)
	go d.readEvents()
	go d.drainLoop()
	d.log.Info("eBPF data path loaded", "interfaces", ifaces, "budget_bytes", d.params.BudgetBytes,
		"max_flows", d.cfg.MaxFlows, "keepalive", time.Duration(d.cfg.keepalive()), "mirror_vxlan_port", d.params.MirrorVXLANPort)
	return nil
}

// SocketFilterFD is the cut-off program's file descriptor, to attach to
// the capture sockets (capture.LiveConfig.EBPFFilter). Valid after Start.
func (d *Datapath) SocketFilterFD() int { return d.objs.TapirCutoff.FD() }

// Kernel returns the flow map as a Kernel. Valid after Start.
func (d *Datapath) Kernel() Kernel { return d.kernel }

// WrapSink returns a MergeSink in front of next whose counters the
// Datapath exports.
func (d *Datapath) WrapSink(next output.Sink) *MergeSink {
	m := NewMergeSink(next, d.kernel)
	d.sinksMu.Lock()
	d.sinks = append(d.sinks, m)
	d.sinksMu.Unlock()
	return m
}

// SetPins replaces the pinned flows (from the configuration, or pushed by
// the collector). The kernel re-evaluates pins of each flow at its next
// packet past the budget; the userspace table does the same through
// Pins(). It is safe for concurrent use.
func (d *Datapath) SetPins(c PinConfig) error {
	p, err := NewPins(c, d.params.CommunitySeed)
	if err != nil {
		return fmt.Errorf("pins: %w", err)
	}
	d.pins.Store(p)
	if !d.started {
		return nil
	}
	return d.loadPins(p)
}

func (d *Datapath) writeConfig() error {
	c := bpf.TapirCutoffConfig{Budget: uint64(d.params.BudgetBytes), KeepaliveNs: d.cfg.keepalive(),
		Snaplen: uint32(d.params.SnapLen), PinGen: d.pinGen}
	if d.pins.Load().HasCommunityIDs() {
		c.Flags |= cfgNewFlowEvents
	}
	if err := d.objs.TapirConfig.Put(uint32(0), &c); err != nil {
		return fmt.Errorf("write cut-off config: %w", err)
	}
	return nil
}

// loadPins replaces the kernel's pin maps with p and bumps the pin
// generation so that flows re-evaluate.
func (d *Datapath) loadPins(p *Pins) error {
	d.pinMu.Lock()
	defer d.pinMu.Unlock()
	if err := clearMap(d.objs.TapirPinNets, func() any { return new(bpf.TapirPinNetKey) }); err != nil {
		return err
	}
	if err := clearMap(d.objs.TapirPinPorts, func() any { return new(uint16) }); err != nil {
		return err
	}
	if err := clearMap(d.objs.TapirPinFlows, func() any { return new(bpf.TapirFlowKey) }); err != nil {
		return err
	}
	one := uint8(1)
	for _, n := range p.nets {
		k := bpf.TapirPinNetKey{Prefixlen: uint32(n.Bits())}
		if n.Addr().Is4() {
			k.Prefixlen += 96
			a := flow.AddrFrom4(n.Addr().As4())
			k.Addr = a
		} else {
			k.Addr = n.Addr().As16()
		}
		if err := d.objs.TapirPinNets.Put(&k, &one); err != nil {
			return fmt.Errorf("pin net %s: %w", n, err)
		}
	}
	for port := range p.ports {
		if err := d.objs.TapirPinPorts.Put(&port, &one); err != nil {
			return fmt.Errorf("pin port %d: %w", port, err)
		}
	}
	if p.HasCommunityIDs() && d.kernel != nil {
		// Flows already in the map: resolve their Community IDs now.
		_ = d.kernel.Walk(func(k *flow.Key, _ *FlowCounters) { d.resolvePin(p, k) })
	}
	d.pinGen++
	return d.writeConfig()
}

func clearMap(m *cebpf.Map, newKey func() any) error {
	var keys []any
	it := m.Iterate()
	k := newKey()
	var v uint8
	for it.Next(k, &v) {
		keys = append(keys, k)
		k = newKey()
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("iterate %s: %w", m, err)
	}
	for _, k := range keys {
		if err := m.Delete(k); err != nil && !errors.Is(err, cebpf.ErrKeyNotExist) {
			return fmt.Errorf("clear %s: %w", m, err)
		}
	}
	return nil
}

// resolvePin adds flow k to the pinned-flow map when its Community ID is
// pinned.
func (d *Datapath) resolvePin(p *Pins, k *flow.Key) bool {
	if !p.HasCommunityIDs() || !p.Match(k) || p.MatchEndpoints(k) {
		return false
	}
	bk := keyToBPF(k)
	one := uint8(1)
	if err := d.objs.TapirPinFlows.Put(&bk, &one); err != nil {
		d.log.Warn("pin flow", "flow", k.String(), "err", err)
		return false
	}
	return true
}

// readEvents handles new-flow and map-full events.
func (d *Datapath) readEvents() {
	defer d.wg.Done()
	var ev bpf.TapirEvent
	for {
		rec, err := d.events.Read()
		if err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				return
			}
			continue
		}
		if len(rec.RawSample) < int(sizeofEvent) {
			continue
		}
		decodeEvent(rec.RawSample, &ev)
		switch ev.Type {
		case eventNewFlow:
			k := keyFromBPF(&ev.Key)
			if d.resolvePin(d.pins.Load(), &k) {
				d.pinMu.Lock()
				d.pinGen++
				err := d.writeConfig()
				d.pinMu.Unlock()
				if err != nil {
					d.log.Warn("bump pin generation", "err", err)
				}
			}
		case eventMapFull:
			now := time.Now().UnixNano()
			if last := d.fullLogged.Load(); now-last > int64(10*time.Second) && d.fullLogged.CompareAndSwap(last, now) {
				d.log.Warn("eBPF flow map full: new flows are captured whole and not counted in the kernel; raise ebpf.max_flows",
					"max_flows", d.cfg.MaxFlows)
			}
		}
	}
}

// drainLoop deletes idle kernel entries every DrainInterval.
func (d *Datapath) drainLoop() {
	defer d.wg.Done()
	t := time.NewTicker(d.cfg.DrainInterval)
	defer t.Stop()
	for {
		select {
		case <-d.done:
			return
		case <-t.C:
			if _, err := d.Drain(); err != nil {
				d.log.Warn("drain flow map", "err", err)
			}
		}
	}
}

// Drain deletes the kernel entries idle for longer than IdleTimeout and
// returns how many it deleted.
func (d *Datapath) Drain() (int, error) {
	return drainIdle(d.kernel, time.Now().Add(-d.cfg.IdleTimeout), &d.entries, &d.drainedIdle)
}

// drainIdle walks k in batches and deletes entries whose last packet is
// before cutoff; it stores the number of entries seen in entries.
func drainIdle(k Kernel, cutoff time.Time, entries, drained *atomic.Uint64) (int, error) {
	var idle []flow.Key
	n := uint64(0)
	if err := k.Walk(func(key *flow.Key, c *FlowCounters) {
		n++
		if c.Last().Before(cutoff) {
			idle = append(idle, *key)
		}
	}); err != nil {
		return 0, err
	}
	entries.Store(n)
	if len(idle) == 0 {
		return 0, nil
	}
	del, err := k.Delete(idle)
	drained.Add(uint64(del))
	return del, err
}

// Counters returns the kernel programs' counters and the drain's.
func (d *Datapath) Counters() (KernelCounters, error) {
	var c KernelCounters
	if !d.started {
		return c, nil
	}
	var perCPU []bpf.TapirCounters
	if err := d.objs.TapirCounters.Lookup(uint32(0), &perCPU); err != nil {
		return c, fmt.Errorf("read kernel counters: %w", err)
	}
	var n [bpf.TapirCounterCNT_MAX]uint64
	for i := range perCPU {
		for j, v := range perCPU[i].N {
			n[j] += v
		}
	}
	c.Accounted = n[bpf.TapirCounterCNT_ACCOUNTED]
	c.Untracked = n[bpf.TapirCounterCNT_UNTRACKED]
	c.NewFlows = n[bpf.TapirCounterCNT_NEW_FLOWS]
	c.MapFull = n[bpf.TapirCounterCNT_MAP_FULL]
	c.EventDrops = n[bpf.TapirCounterCNT_EVENT_DROPS]
	c.Passed = n[bpf.TapirCounterCNT_PASSED]
	c.PassedControl = n[bpf.TapirCounterCNT_PASSED_CONTROL]
	c.PassedPinned = n[bpf.TapirCounterCNT_PASSED_PINNED]
	c.PassedKeepalive = n[bpf.TapirCounterCNT_PASSED_KEEPALIVE]
	c.CutPackets = n[bpf.TapirCounterCNT_CUT_PACKETS]
	c.CutBytes = n[bpf.TapirCounterCNT_CUT_BYTES]
	c.MapEntries = d.entries.Load()
	c.DrainedIdle = d.drainedIdle.Load()
	d.sinksMu.Lock()
	for _, s := range d.sinks {
		m, u, del, _ := s.Stats()
		c.RecordsMerged += m
		c.RecordsUnmatched += u
		c.DeletedOnRecord += del
	}
	d.sinksMu.Unlock()
	return c, nil
}

// ProgramID returns the kernel id of the program (for bpftool prog show
// id N).
func (d *Datapath) ProgramID() (cutoff uint32) {
	if i, err := d.objs.TapirCutoff.Info(); err == nil {
		id, _ := i.ID()
		cutoff = uint32(id)
	}
	return
}

// Stop stops the goroutines and closes the program and every map.
// Sockets with the cut-off attached keep their own reference to it. It
// is idempotent.
func (d *Datapath) Stop() error {
	d.stopOnce.Do(func() {
		close(d.done)
		if d.events != nil {
			d.events.Close()
		}
		d.wg.Wait()
		d.closeAll()
	})
	return nil
}

func (d *Datapath) closeAll() {
	if d.events != nil {
		d.events.Close()
	}
	d.objs.Close()
}
