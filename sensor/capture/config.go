package capture

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// LiveConfig configures an AF_PACKET live source.
type LiveConfig struct {
	// Interface to capture on (required).
	Interface string `yaml:"-"`
	// SnapLen is the number of bytes kept of each packet (default 262144).
	SnapLen int `yaml:"snap_len"`
	// BlockSize is the TPACKET_V3 block size in bytes, a multiple of the
	// page size and of FrameSize, larger than SnapLen plus 4096 bytes of
	// headers (default 1 MiB).
	BlockSize int `yaml:"block_size"`
	// NumBlocks is the number of blocks in the ring (default 64: a 64 MiB
	// ring per socket with the default block size).
	NumBlocks int `yaml:"num_blocks"`
	// FrameSize is the kernel's frame accounting unit; TPACKET_V3 packs
	// variable-sized packets into blocks regardless (default 65536).
	FrameSize int `yaml:"frame_size"`
	// BlockTimeout is how long the kernel holds a partly filled block
	// before handing it to userspace (default 10ms).
	BlockTimeout time.Duration `yaml:"block_timeout"`
	// PollTimeout bounds how long ReadPacket waits before returning
	// ErrTimeout (default 100ms).
	PollTimeout time.Duration `yaml:"poll_timeout"`
	// Promiscuous puts the interface in promiscuous mode through a
	// PACKET_MR_PROMISC membership of the socket (default true); the kernel
	// drops it when the socket closes.
	Promiscuous bool `yaml:"promiscuous"`
	// FanoutGroup is the PACKET_FANOUT group id shared by the sockets of
	// one interface (symmetric hash, no defrag: the wire packets are kept); 0 disables fanout. Use a distinct
	// id per interface and per sensor on the host.
	FanoutGroup uint16 `yaml:"fanout_group"`
	// Filter is a tcpdump-syntax capture filter ("" captures everything).
	Filter string `yaml:"filter"`
	// Tcpdump is the path of tcpdump used to compile Filter ("" = PATH).
	Tcpdump string `yaml:"tcpdump"`
	// EBPFFilter, when positive, is the file descriptor of an eBPF socket
	// filter program (sensor/ebpf's capture cut-off) attached to every
	// socket with SO_ATTACH_BPF in place of the classic filter. A socket
	// holds one filter, so EBPFFilter and Filter are exclusive: the
	// sensor turns the cut-off off when a capture filter is configured.
	EBPFFilter int `yaml:"-"`
}

// DefaultLiveConfig returns the defaults for live capture on iface.
func DefaultLiveConfig(iface string) LiveConfig {
	return LiveConfig{
		Interface:    iface,
		SnapLen:      262144,
		BlockSize:    1 << 20,
		NumBlocks:    64,
		FrameSize:    1 << 16,
		BlockTimeout: 10 * time.Millisecond,
		PollTimeout:  100 * time.Millisecond,
		Promiscuous:  true,
	}
}

// blockOverhead is room left in a block for the block descriptor, the
// tpacket3 header, sockaddr_ll, the MAC offset alignment and a VLAN tag.
const blockOverhead = 4096

// Validate checks the configuration.
func (c LiveConfig) Validate() error {
	page := os.Getpagesize()
	var errs []error
	if c.Interface == "" {
		errs = append(errs, errors.New("interface is required"))
	}
	if c.SnapLen < 64 || c.SnapLen > 262144 {
		errs = append(errs, fmt.Errorf("snap-len %d: must be in [64, 262144]", c.SnapLen))
	}
	if c.FrameSize <= 0 || c.FrameSize%16 != 0 {
		errs = append(errs, fmt.Errorf("frame-size %d: must be a positive multiple of 16", c.FrameSize))
	}
	if c.BlockSize <= 0 || c.BlockSize%page != 0 || (c.FrameSize > 0 && c.BlockSize%c.FrameSize != 0) {
		errs = append(errs, fmt.Errorf("block-size %d: must be a multiple of the page size %d and of frame-size %d", c.BlockSize, page, c.FrameSize))
	}
	if c.BlockSize < c.SnapLen+blockOverhead {
		errs = append(errs, fmt.Errorf("block-size %d: must be at least snap-len %d + %d so whole packets fit", c.BlockSize, c.SnapLen, blockOverhead))
	}
	if c.NumBlocks < 2 {
		errs = append(errs, fmt.Errorf("num-blocks %d: must be at least 2", c.NumBlocks))
	}
	if c.BlockTimeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("block-timeout %v: must be at least 1ms", c.BlockTimeout))
	}
	if c.EBPFFilter > 0 && c.Filter != "" {
		errs = append(errs, errors.New("filter and an eBPF socket filter are exclusive (one filter per socket)"))
	}
	if c.PollTimeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("poll-timeout %v: must be at least 1ms (an idle interface must not block forever)", c.PollTimeout))
	}
	return errors.Join(errs...)
}
