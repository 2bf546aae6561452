//go:build linux

package capture

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// LiveSource reads packets from one AF_PACKET TPACKET_V3 socket. It
// implements Source; see Source for the concurrency contract.
type LiveSource struct {
	cfg     LiveConfig
	tp      *afpacket.TPacket
	link    uint16
	scratch []byte // frame with its VLAN tag re-inserted

	// Startup window: packets the kernel queued before the filter was
	// attached are filtered here (vm, until filterUntil); packets queued
	// before this socket joined a fanout group that already had members
	// are copies of what the group received and are dropped (dupUntil).
	vm          *bpf.VM
	filterUntil int64
	dupUntil    int64
	startup     bool

	packets   atomic.Uint64
	discarded atomic.Uint64
	closeOnce sync.Once
}

var _ Source = (*LiveSource)(nil)

// OpenLive opens one live source on cfg.Interface. With a FanoutGroup it
// joins that group as its first member; use OpenLiveGroup for workers.
func OpenLive(cfg LiveConfig) (*LiveSource, error) {
	srcs, err := OpenLiveGroup(cfg, 1)
	if err != nil {
		return nil, err
	}
	return srcs[0], nil
}

// OpenLiveGroup opens workers sources on cfg.Interface in the fanout group
// cfg.FanoutGroup (required when workers > 1), so that the kernel spreads
// flows over them by a symmetric hash of addresses and ports, both
// directions and all IP fragments of a flow on the same source. The
// filter is compiled once. Each source must be read by its own goroutine.
func OpenLiveGroup(cfg LiveConfig, workers int) ([]*LiveSource, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("live capture config: %w", err)
	}
	if workers < 1 || (workers > 1 && cfg.FanoutGroup == 0) {
		return nil, fmt.Errorf("%d workers need a fanout group", workers)
	}
	link, err := interfaceLinkType(cfg.Interface)
	if err != nil {
		return nil, err
	}
	prog, err := CompileFilter(cfg.Tcpdump, cfg.Filter, link, cfg.SnapLen)
	if err != nil {
		return nil, err
	}
	var vm *bpf.VM
	if cfg.Filter != "" {
		insns, ok := bpf.Disassemble(prog)
		if !ok {
			// Extensions the VM lacks: rely on the kernel filter alone.
			vm = nil
		} else if vm, err = bpf.NewVM(insns); err != nil {
			vm = nil
		}
	}
	srcs := make([]*LiveSource, 0, workers)
	for i := 0; i < workers; i++ {
		s, err := openLive(cfg, link, prog, vm, i > 0)
		if err != nil {
			for _, s := range srcs {
				s.Close()
			}
			return nil, fmt.Errorf("open socket %d on %s: %w", i, cfg.Interface, err)
		}
		srcs = append(srcs, s)
	}
	return srcs, nil
}

func openLive(cfg LiveConfig, link uint16, prog []bpf.RawInstruction, vm *bpf.VM, groupHasMembers bool) (*LiveSource, error) {
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(cfg.Interface),
		afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
		afpacket.OptFrameSize(cfg.FrameSize),
		afpacket.OptBlockSize(cfg.BlockSize),
		afpacket.OptNumBlocks(cfg.NumBlocks),
		afpacket.OptBlockTimeout(cfg.BlockTimeout),
		afpacket.OptPollTimeout(cfg.PollTimeout),
	)
	if err != nil {
		return nil, fmt.Errorf("open ring: %w", err)
	}
	s := &LiveSource{cfg: cfg, tp: tp, link: link, scratch: make([]byte, cfg.SnapLen+4), startup: true}
	if cfg.EBPFFilter > 0 {
		if err := tp.SetEBPF(int32(cfg.EBPFFilter)); err != nil {
			tp.Close()
			return nil, fmt.Errorf("attach eBPF socket filter: %w", err)
		}
	} else if err := tp.SetBPF(prog); err != nil {
		tp.Close()
		return nil, fmt.Errorf("attach filter: %w", err)
	}
	s.vm = vm
	s.filterUntil = time.Now().UnixNano()
	if cfg.Promiscuous {
		if err := tp.SetPromiscuous(true); err != nil {
			tp.Close()
			return nil, fmt.Errorf("promiscuous mode: %w", err)
		}
	}
	if cfg.FanoutGroup != 0 {
		before := time.Now().UnixNano()
		if err := tp.SetFanout(afpacket.FanoutHash, cfg.FanoutGroup); err != nil {
			tp.Close()
			return nil, fmt.Errorf("join fanout group %d: %w", cfg.FanoutGroup, err)
		}
		if groupHasMembers {
			s.dupUntil = before
		}
	}
	return s, nil
}

// interfaceLinkType returns the pcap link type of an interface from its
// ARPHRD hardware type.
func interfaceLinkType(name string) (uint16, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	switch hw := ifr.Uint16(); hw {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK:
		return LinkTypeEthernet, nil
	case unix.ARPHRD_NONE:
		return LinkTypeRaw, nil
	default:
		return 0, fmt.Errorf("interface %s: unsupported hardware type %d", name, hw)
	}
}

// ReadPacket returns the next packet; the data is valid until the next
// call. It returns ErrTimeout when nothing arrived within PollTimeout.
// VLAN tags the kernel stripped are put back (see the package doc).
func (s *LiveSource) ReadPacket() ([]byte, CaptureInfo, error) {
	for {
		data, ci, err := s.tp.ZeroCopyReadPacketData()
		if err != nil {
			if errors.Is(err, afpacket.ErrTimeout) {
				if s.startup && time.Now().UnixNano() > s.filterUntil {
					s.startup = false // the ring holds nothing from before the filter
				}
				return nil, CaptureInfo{}, ErrTimeout
			}
			return nil, CaptureInfo{}, fmt.Errorf("read %s: %w", s.cfg.Interface, err)
		}
		ts := ci.Timestamp.UnixNano()
		if s.startup {
			if ts >= s.filterUntil && ts >= s.dupUntil {
				s.startup = false
			} else if ts < s.dupUntil || (s.vm != nil && ts < s.filterUntil && !s.vmAccepts(data, ci.AncillaryData)) {
				s.discarded.Add(1)
				continue
			}
		}
		info := CaptureInfo{
			Timestamp:      ts,
			CaptureLength:  ci.CaptureLength,
			Length:         ci.Length,
			InterfaceIndex: ci.InterfaceIndex,
			LinkType:       s.link,
		}
		for _, a := range ci.AncillaryData {
			if v, ok := a.(afpacket.AncillaryVLAN); ok && s.link == LinkTypeEthernet && len(data) >= 12 {
				data = s.insertVLAN(data, uint16(v.VLAN))
				info.CaptureLength += 4
				info.Length += 4
			}
		}
		s.packets.Add(1)
		return data, info, nil
	}
}

// vmAccepts runs the filter in userspace on a packet queued before the
// kernel filter was attached, seeing the frame as the kernel filter does
// (without a stripped VLAN tag).
func (s *LiveSource) vmAccepts(data []byte, _ []interface{}) bool {
	n, err := s.vm.Run(data)
	return err == nil && n > 0
}

// insertVLAN copies data into the scratch buffer with an 802.1Q tag
// carrying vid behind the MAC addresses.
func (s *LiveSource) insertVLAN(data []byte, vid uint16) []byte {
	if need := len(data) + 4; need > len(s.scratch) {
		s.scratch = make([]byte, need)
	}
	out := s.scratch[:len(data)+4]
	copy(out, data[:12])
	out[12], out[13] = 0x81, 0x00
	out[14], out[15] = byte(vid>>8)&0x0f, byte(vid)
	copy(out[16:], data[12:])
	return out
}

// Interfaces describes the captured interface.
func (s *LiveSource) Interfaces() []InterfaceInfo {
	return []InterfaceInfo{{Name: s.cfg.Interface, LinkType: s.link, SnapLen: s.cfg.SnapLen}}
}

// Stats returns cumulative counters: packets returned, and the kernel's
// received (including dropped), dropped and queue-freeze counts. It may be
// called concurrently with ReadPacket.
func (s *LiveSource) Stats() (Stats, error) {
	_, v3, err := s.tp.SocketStats()
	if err != nil {
		return Stats{}, fmt.Errorf("socket stats: %w", err)
	}
	return Stats{
		Packets:       s.packets.Load(),
		KernelPackets: uint64(v3.Packets()),
		KernelDrops:   uint64(v3.Drops()),
		QueueFreezes:  uint64(v3.QueueFreezes()),
		Discarded:     s.discarded.Load(),
	}, nil
}

// Close closes the socket and unmaps the ring. It is idempotent and must
// not run concurrently with ReadPacket.
func (s *LiveSource) Close() error {
	s.closeOnce.Do(s.tp.Close)
	return nil
}
