//go:build linux

package capture

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The TPACKET_V3 ring is read directly rather than through gopacket's
// afpacket: its per-packet ZeroCopyReadPacketData takes a mutex, makes
// five calls through a header interface, builds a time.Time, appends the
// VLAN to a fresh AncillaryData slice (an allocation per tagged packet)
// and bumps an atomic counter, about 200 ns a packet on the read path
// alone against tcpdump's libpcap (TestLiveReadCost). It also reports the
// VLAN ID only, losing the tag's priority bits and 802.1ad TPID.
//
// Layouts from linux/if_packet.h (host byte order):
//
//	struct tpacket_block_desc { __u32 version; __u32 offset_to_priv;
//	    struct tpacket_hdr_v1 { __u32 block_status; __u32 num_pkts;
//	    __u32 offset_to_first_pkt; __u32 blk_len; __u64 seq_num; ... } }
//	struct tpacket3_hdr { __u32 tp_next_offset, tp_sec, tp_nsec,
//	    tp_snaplen, tp_len, tp_status; __u16 tp_mac, tp_net;
//	    __u32 tp_rxhash, tp_vlan_tci; __u16 tp_vlan_tpid, tp_padding; ... }

// blockDesc is the head of a TPACKET_V3 block.
type blockDesc struct {
	version     uint32
	offsetPriv  uint32
	status      uint32
	numPkts     uint32
	offsetFirst uint32
	blkLen      uint32
	seq         uint64
}

// tp3Hdr is the head of one packet in a block.
type tp3Hdr struct {
	next    uint32
	sec     uint32
	nsec    uint32
	snaplen uint32
	length  uint32
	status  uint32
	mac     uint16
	net     uint16
	rxhash  uint32
	vlanTCI uint32
	vlanTP  uint16
	_       uint16
}

// tpAlignment is TPACKET_ALIGNMENT.
const tpAlignment = 16

// ring is one AF_PACKET socket with its mapped TPACKET_V3 receive ring.
// It is read by one goroutine; stats may be read concurrently.
type ring struct {
	fd        int
	file      *os.File        // fd, registered with the runtime's network poller (see wait)
	rc        syscall.RawConn // file's
	mem       []byte
	blockSize int
	numBlocks int
	ifindex   int
	pollWait  time.Duration

	cur  int    // index of the block read or waited for
	held bool   // the reader holds block cur (it must be returned)
	off  int    // offset in mem of the next packet of block cur
	left uint32 // packets of block cur not read yet

	blocks atomic.Uint64 // blocks returned to the kernel
	polls  atomic.Uint64 // poll calls made
}

// openRing opens an AF_PACKET socket on interface ifindex with a
// TPACKET_V3 ring, the filter attached before the socket is bound, so no
// packet reaches it unfiltered. An eBPF program fd > 0 replaces prog.
func openRing(cfg LiveConfig, ifindex int, prog []bpf.RawInstruction, ebpfFD int) (*ring, error) {
	// Protocol 0: the socket receives nothing until bind. Non-blocking,
	// so that os.NewFile registers it with the runtime's network poller.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	r := &ring{fd: fd, file: os.NewFile(uintptr(fd), "packet"), blockSize: cfg.BlockSize, numBlocks: cfg.NumBlocks,
		ifindex: ifindex, pollWait: cfg.PollTimeout}
	if r.rc, err = r.file.SyscallConn(); err != nil {
		r.close()
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	if err := r.setup(cfg, prog, ebpfFD); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *ring) setup(cfg LiveConfig, prog []bpf.RawInstruction, ebpfFD int) error {
	if err := unix.SetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fmt.Errorf("set TPACKET_V3: %w", err)
	}
	if err := r.attachFilter(prog, ebpfFD); err != nil {
		return err
	}
	req := unix.TpacketReq3{
		Block_size:     uint32(cfg.BlockSize),
		Block_nr:       uint32(cfg.NumBlocks),
		Frame_size:     uint32(cfg.FrameSize),
		Frame_nr:       uint32(cfg.BlockSize / cfg.FrameSize * cfg.NumBlocks),
		Retire_blk_tov: uint32(cfg.BlockTimeout / time.Millisecond),
	}
	if err := unix.SetsockoptTpacketReq3(r.fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fmt.Errorf("set up ring of %d blocks of %d bytes: %w", cfg.NumBlocks, cfg.BlockSize, err)
	}
	mem, err := unix.Mmap(r.fd, 0, cfg.BlockSize*cfg.NumBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map ring: %w", err)
	}
	r.mem = mem
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: r.ifindex}
	if err := unix.Bind(r.fd, sa); err != nil {
		return fmt.Errorf("bind to interface %d: %w", r.ifindex, err)
	}
	return nil
}

// attachFilter attaches the eBPF program ebpfFD when positive, else the
// classic program prog.
func (r *ring) attachFilter(prog []bpf.RawInstruction, ebpfFD int) error {
	if ebpfFD > 0 {
		if err := unix.SetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, ebpfFD); err != nil {
			return fmt.Errorf("attach eBPF socket filter: %w", err)
		}
		return nil
	}
	ins := make([]unix.SockFilter, len(prog))
	for i, p := range prog {
		ins[i] = unix.SockFilter{Code: p.Op, Jt: p.Jt, Jf: p.Jf, K: p.K}
	}
	fp := unix.SockFprog{Len: uint16(len(ins)), Filter: &ins[0]}
	if err := unix.SetsockoptSockFprog(r.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fp); err != nil {
		return fmt.Errorf("attach filter: %w", err)
	}
	return nil
}

// promiscuous adds a PACKET_MR_PROMISC membership (dropped with the socket).
func (r *ring) promiscuous() error {
	mreq := unix.PacketMreq{Ifindex: int32(r.ifindex), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(r.fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return fmt.Errorf("promiscuous mode: %w", err)
	}
	return nil
}

// joinFanout joins the PACKET_FANOUT_HASH group id (no defrag).
func (r *ring) joinFanout(id uint16) error {
	if err := unix.SetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_FANOUT, int(id)|unix.PACKET_FANOUT_HASH<<16); err != nil {
		return fmt.Errorf("join fanout group %d: %w", id, err)
	}
	return nil
}

// block returns the descriptor of block i.
func (r *ring) block(i int) *blockDesc {
	return (*blockDesc)(unsafe.Pointer(&r.mem[i*r.blockSize]))
}

// nextBlock returns the held block to the kernel and waits up to the poll
// timeout for the next one; it returns ErrTimeout if none came. Empty
// blocks are returned at once.
func (r *ring) nextBlock() error {
	if r.held {
		r.release()
	}
	deadline := time.Time{}
	for {
		if r.ready() {
			b := r.block(r.cur)
			r.held = true
			r.left = b.numPkts
			r.off = r.cur*r.blockSize + int(b.offsetFirst)
			if r.left == 0 {
				r.release()
				continue
			}
			return nil
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(r.pollWait)
		}
		if err := r.wait(deadline); err != nil {
			return err
		}
	}
}

// ready reports whether block cur belongs to the reader.
func (r *ring) ready() bool {
	return atomic.LoadUint32(&r.block(r.cur).status)&unix.TP_STATUS_USER != 0
}

// wait waits until block cur is ready or the deadline passes (ErrTimeout).
// It parks the goroutine in the runtime's network poller, which the
// kernel wakes when it retires a block, instead of blocking the thread in
// poll(2): a blocking system call made the runtime hand the thread's P
// to another thread and kept its monitor thread (sysmon) waking every 20
// us to do so, a tenth of the sensor's CPU at 150 kpps live (nanosleep
// and context switches in perf).
func (r *ring) wait(deadline time.Time) error {
	r.polls.Add(1)
	if err := r.file.SetReadDeadline(deadline); err != nil {
		return fmt.Errorf("poll: %w", err)
	}
	var sockErr error
	woken := false
	err := r.rc.Read(func(uintptr) bool {
		if r.ready() {
			return true
		}
		if woken {
			// Woken without a block: a socket error (the interface went
			// away) is the other reason the kernel wakes a reader.
			if errno, gerr := unix.GetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_ERROR); gerr == nil && errno != 0 {
				sockErr = unix.Errno(errno)
				return true
			}
		}
		woken = true
		return false
	})
	switch {
	case sockErr != nil:
		return fmt.Errorf("poll: %w", sockErr)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrTimeout
	case err != nil:
		return fmt.Errorf("poll: %w", err)
	}
	return nil
}

// release hands block cur back to the kernel and moves to the next.
func (r *ring) release() {
	atomic.StoreUint32(&r.block(r.cur).status, unix.TP_STATUS_KERNEL)
	r.held, r.left = false, 0
	r.blocks.Add(1)
	if r.cur++; r.cur == r.numBlocks {
		r.cur = 0
	}
}

// packet returns the header and bytes of the next packet of the held
// block and advances past it. The caller checks r.left > 0.
func (r *ring) packet() (*tp3Hdr, []byte) {
	h := (*tp3Hdr)(unsafe.Pointer(&r.mem[r.off]))
	start := r.off + int(h.mac)
	data := r.mem[start : start+int(h.snaplen) : start+int(h.snaplen)]
	if h.next != 0 {
		r.off += int(h.next)
	} else {
		r.off = (start + int(h.snaplen) + tpAlignment - 1) &^ (tpAlignment - 1)
	}
	r.left--
	return h, data
}

// stats reads and resets the kernel's PACKET_STATISTICS.
func (r *ring) stats() (*unix.TpacketStatsV3, error) {
	return unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
}

// close unmaps the ring and closes the socket.
func (r *ring) close() {
	if r.mem != nil {
		_ = unix.Munmap(r.mem) // fails only for a bad mapping, which close forgets anyway
		r.mem = nil
	}
	if r.fd >= 0 {
		_ = r.file.Close() // the socket's only error on close is a bad descriptor
		r.fd = -1
	}
}

// htons converts a 16-bit value to network byte order.
func htons(v uint16) uint16 { return v<<8 | v>>8 }
