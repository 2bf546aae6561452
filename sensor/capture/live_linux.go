//go:build linux

package capture

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// LiveSource reads packets from one AF_PACKET TPACKET_V3 socket. It
// implements Source; see Source for the concurrency contract.
type LiveSource struct {
	cfg     LiveConfig
	r       *ring
	link    uint16
	scratch []byte // frame with its VLAN tag re-inserted

	// Startup window: packets queued before this socket joined a fanout
	// group that already had members are copies of what the group
	// received and are dropped (those with a timestamp before dupUntil).
	dupUntil int64
	startup  bool

	read      uint64 // packets returned, owned by the reader
	packets   atomic.Uint64
	discarded atomic.Uint64

	statsMu sync.Mutex
	kernel  Stats // kernel counters accumulated from PACKET_STATISTICS
	closed  bool
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
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", cfg.Interface, err)
	}
	prog, err := CompileFilter(cfg.Tcpdump, cfg.Filter, link, cfg.SnapLen)
	if err != nil {
		return nil, err
	}
	srcs := make([]*LiveSource, 0, workers)
	for i := 0; i < workers; i++ {
		s, err := openLive(cfg, link, ifi.Index, prog, i > 0)
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

func openLive(cfg LiveConfig, link uint16, ifindex int, prog []bpf.RawInstruction, groupHasMembers bool) (*LiveSource, error) {
	r, err := openRing(cfg, ifindex, prog, cfg.EBPFFilter)
	if err != nil {
		return nil, fmt.Errorf("open ring: %w", err)
	}
	s := &LiveSource{cfg: cfg, r: r, link: link, scratch: make([]byte, cfg.SnapLen+4)}
	if cfg.Promiscuous {
		if err := r.promiscuous(); err != nil {
			r.close()
			return nil, err
		}
	}
	if cfg.FanoutGroup != 0 {
		before := time.Now().UnixNano()
		if err := r.joinFanout(cfg.FanoutGroup); err != nil {
			r.close()
			return nil, err
		}
		if groupHasMembers {
			s.dupUntil, s.startup = before, true
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
//
// It walks the ring's blocks in place: within a block a packet costs a
// few loads and no call into the kernel; the block goes back to the
// kernel when the call after its last packet moves on to the next block.
func (s *LiveSource) ReadPacket() ([]byte, CaptureInfo, error) {
	r := s.r
	for {
		if r.left == 0 {
			// Stats sees the count once per ring block: an atomic store
			// per packet is a locked instruction that waits for every
			// store in flight.
			s.packets.Store(s.read)
			if err := r.nextBlock(); err != nil {
				if err == ErrTimeout {
					s.startup = false // the ring held nothing from before the fanout join
					return nil, CaptureInfo{}, ErrTimeout
				}
				return nil, CaptureInfo{}, fmt.Errorf("read %s: %w", s.cfg.Interface, err)
			}
		}
		h, data := r.packet()
		ts := int64(h.sec)*1e9 + int64(h.nsec)
		if s.startup {
			if ts < s.dupUntil {
				s.discarded.Add(1)
				continue
			}
			s.startup = false
		}
		info := CaptureInfo{
			Timestamp:      ts,
			CaptureLength:  len(data),
			Length:         int(h.length),
			InterfaceIndex: r.ifindex,
			LinkType:       s.link,
		}
		if h.status&unix.TP_STATUS_VLAN_VALID != 0 && s.link == LinkTypeEthernet && len(data) >= 12 {
			tpid := uint16(0x8100)
			if h.status&unix.TP_STATUS_VLAN_TPID_VALID != 0 && h.vlanTP != 0 {
				tpid = h.vlanTP
			}
			data = s.insertVLAN(data, tpid, uint16(h.vlanTCI))
			info.CaptureLength += 4
			info.Length += 4
		}
		s.read++
		return data, info, nil
	}
}

// insertVLAN copies data into the scratch buffer with a VLAN tag (tpid,
// tci) behind the MAC addresses.
func (s *LiveSource) insertVLAN(data []byte, tpid, tci uint16) []byte {
	if need := len(data) + 4; need > len(s.scratch) {
		s.scratch = make([]byte, need)
	}
	out := s.scratch[:len(data)+4]
	copy(out, data[:12])
	out[12], out[13] = byte(tpid>>8), byte(tpid)
	out[14], out[15] = byte(tci>>8), byte(tci)
	copy(out[16:], data[12:])
	return out
}

// Interfaces describes the captured interface.
func (s *LiveSource) Interfaces() []InterfaceInfo {
	return []InterfaceInfo{{Name: s.cfg.Interface, LinkType: s.link, SnapLen: s.cfg.SnapLen}}
}

// Stats returns cumulative counters: packets returned (as of the start of
// the ring block being read; exact once the reader waits or after Close),
// and the kernel's received (including dropped), dropped and queue-freeze
// counts, summed over reads of PACKET_STATISTICS (each read resets the
// kernel's copy). It may be called concurrently with ReadPacket; after
// Close it returns the last counters read.
func (s *LiveSource) Stats() (Stats, error) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if err := s.pollStats(); err != nil {
		return Stats{}, err
	}
	st := s.kernel
	st.Packets = s.packets.Load()
	st.Discarded = s.discarded.Load()
	return st, nil
}

// pollStats adds the kernel's counters since the last read to s.kernel.
// The caller holds statsMu.
func (s *LiveSource) pollStats() error {
	if s.closed {
		return nil
	}
	k, err := s.r.stats()
	if err != nil {
		return fmt.Errorf("socket stats: %w", err)
	}
	// tp_packets already counts the drops (the kernel adds them when read).
	s.kernel.KernelPackets += uint64(k.Packets)
	s.kernel.KernelDrops += uint64(k.Drops)
	s.kernel.QueueFreezes += uint64(k.Freeze_q_cnt)
	return nil
}

// Close reads the kernel counters a last time, closes the socket and
// unmaps the ring. It is idempotent and must not run concurrently with
// ReadPacket.
func (s *LiveSource) Close() error {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.packets.Store(s.read) // the reader has stopped: its last block's packets
	err := s.pollStats()
	if !s.closed {
		s.closed = true
		s.r.close()
	}
	return err
}
