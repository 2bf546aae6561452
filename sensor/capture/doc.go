// Package capture provides packet sources for the sensor: capture files
// (pcap, pcapng, gzip-compressed or not, or standard input) and live Linux
// AF_PACKET sockets (TPACKET_V3 rings with fanout).
//
// Every source implements Source. ReadPacket hands out frames without
// copying where it can: the bytes are valid only until the next call.
//
// # Files
//
// OpenFile reads pcap (microsecond and nanosecond resolution, both byte
// orders) and pcapng (several sections and interfaces, each with its own
// link type and timestamp resolution: CaptureInfo carries the per-packet
// LinkType and InterfaceIndex). Gzip compression is detected by its magic
// bytes, whatever the file name; "-" reads standard input. A file cut short
// yields the packets before the damage, then an error wrapping ErrTruncated
// that names the packet count and byte offset; any other damage wraps
// ErrCorrupt. The end of a sound file is io.EOF.
//
// Classic pcap records are read by a reader of this package, 1 MiB of the
// (decompressed) stream at a time and returned in place, with the
// acceptance rules and errors of gopacket's pcapgo.Reader (a record longer
// than max(snap length, 262144) or than its original length is corrupt; the
// buffer grows only with data actually read). pcapng goes through
// pcapgo.NgReader.
//
// # Live capture
//
// OpenLive opens one AF_PACKET TPACKET_V3 socket on one interface. The sensor
// captures an interface with N workers by opening N sources with the same
// LiveConfig.FanoutGroup (OpenLiveGroup does this): the kernel's
// PACKET_FANOUT_HASH (a symmetric flow hash) sends both directions of a
// flow to the same socket, so each worker owns its flows and needs no
// locks. The defrag flag is deliberately not set: with it the kernel
// reassembles IP fragments before fanout and the sensor would store the
// reassembled datagram instead of the fragments on the wire (measured:
// 187 of 1 M packets "missing" in bench/live.sh). Without it all fragments
// of a datagram share a socket (the kernel hashes fragments on their
// addresses), and a fragmented datagram whose unfragmented packets landed
// on another worker is reported by both workers under the same Community
// ID; retrieval by Community ID merges them. Several interfaces are captured with one group of sources
// per interface (each with its own fanout group id); the sensor runs one
// goroutine per source and routes nothing between them, since flows are
// sharded by the kernel within an interface, and the same flow seen on two
// interfaces is two observations.
//
// Ring sizing: with TPACKET_V3 the kernel packs packets of any size into
// blocks; the largest frame it stores is the block size minus the block
// header, so BlockSize must exceed SnapLen plus headers (Validate checks
// this). The default snap length is 262144 bytes (libpcap's maximum) and the
// default block 1 MiB, so GRO/GSO super-packets (veth and most NICs merge
// segments up to 64 KiB, BIG TCP more) are captured whole. FrameSize is only
// the kernel's bookkeeping unit in V3. On real taps, turn offloads off as
// Suricata recommends, so capture sees wire-sized packets:
//
//	ethtool -K eth1 gro off lro off gso off tso off rx-vlan-offload off
//
// The snap length is enforced in the kernel: the attached classic BPF
// program returns it as the number of bytes to keep.
//
// VLAN: when the NIC or the kernel strips the outer VLAN tag (rx VLAN
// offload, and the kernel itself on receive, as on veth), it reports the
// tag's TCI and TPID beside the packet. The live source puts that tag back
// behind the MAC addresses (in a per-source scratch buffer), priority and
// DEI bits and an 802.1ad TPID included, so decoders and stored packets see
// the frame as it was on the wire; Length and CaptureLength grow by 4.
//
// The ring is read directly (ring_linux.go), not through gopacket's
// afpacket, whose per-packet API cost about 200 ns a packet more than
// libpcap on the read path alone (a mutex, interface calls, a time.Time,
// an allocation per tagged packet; TestLiveReadCost) and loses the tag's
// priority bits and TPID. ReadPacket walks each ring block in place: no
// system call, allocation or lock per packet; one poll when the reader has
// caught up with the kernel; the block goes back to the kernel when the
// reader moves past its last packet. The filter is attached before the
// socket is bound to the interface, so no packet reaches the ring
// unfiltered. Stats sums the kernel's PACKET_STATISTICS (which reset on
// each read): KernelPackets = Packets read + KernelDrops + what the ring
// still holds; Close reads them a last time so they survive it.
//
// A drop without a freeze: the kernel counts a TPACKET_V3 drop in two
// places. Under the ring lock, when the next block is still the reader's:
// the queue freezes (QueueFreezes) and drops until the reader returns the
// block. And before taking the lock, in tpacket_rcv's "if we are flooded,
// just give up" check (__packet_rcv_has_room), which drops the packet when
// the block the kernel is filling (kactive_blk_num) is not in
// TP_STATUS_KERNEL. prb_close_block, on another CPU, marks the full or
// timed-out block TP_STATUS_USER, wakes the reader (sk_data_ready) and
// only then advances kactive_blk_num; a packet that runs the lock-free
// check in that window is dropped and counted although the ring has free
// blocks, and no freeze is counted. This is the one drop with no freeze
// reported at 300 k packets/s (issue 14): a kernel race, rare (not
// reproduced in 9 M packets sent from both CPUs into 8 KiB blocks here),
// that no reader can prevent; larger blocks make it rarer (fewer block
// closes). Drops with QueueFreezes > 0 mean the reader fell behind.
//
// Idle interfaces never hang a reader: ReadPacket returns ErrTimeout after
// PollTimeout without a packet, so the caller can advance its timers.
//
// # Capture filters
//
// A tcpdump-syntax filter is compiled to classic BPF by running
// `tcpdump -ddd -y <DLT> -s <snaplen> <expr>` once at startup (CompileFilter)
// and attached to each socket with SO_ATTACH_FILTER. Decision: there is no
// well-kept pure-Go compiler of the pcap filter language (gopacket's
// pcap.CompileBPFFilter wraps libpcap through cgo, and the pure-Go attempts
// cover a small subset of the grammar), and cgo is ruled out for the sensor,
// so the sensor requires Debian's tcpdump package, which is libpcap's own
// compiler. A bad expression fails OpenLive with tcpdump's message. The
// program is compiled for a dead handle (no Linux BPF extensions), so
// "vlan" primitives match tags present in the packet bytes: on interfaces
// with rx VLAN offload the socket filter sees frames whose tag the kernel
// has already removed; filter on the inner protocol instead, or turn
// rx-vlan-offload off.
package capture
