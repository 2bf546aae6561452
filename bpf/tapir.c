//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// tapir's eBPF data path: one program, tapir_cutoff, attached as the
// socket filter of every AF_PACKET capture socket. For each packet it
// parses the headers once, looks the flow up once in tapir_flows, and
//
//   - accounts it: exact per-flow, per-direction packets, bytes,
//     first/last seen and TCP flags;
//   - cuts it off: passes the first budget bytes of each flow direction,
//     every TCP SYN/FIN/RST, pinned flows whole, and one keepalive packet
//     per direction per keepalive interval; drops the rest before the
//     kernel copies it into the ring.
//
// A socket filter sees every packet of the interface, both directions
// (ingress taps and dev_queue_xmit_nit on egress), once per fanout group
// (the group hands each packet to one socket), and before the ring-full
// check, so packets the ring drops are accounted too. An earlier version
// accounted in a separate tcx program at ingress and egress: two parses
// and two flow-map lookups per packet (135 + 137 ns by bpf_stats) for the
// same information.
//
// Nothing goes to userspace per packet: the ring buffer carries new-flow
// events (only when userspace asks for them, to resolve Community ID pins)
// and map-full events (at most one per CPU per 100 ms); every failure is
// counted in a per-CPU counter struct (one lookup per packet reaches all
// of them). Userspace reads and deletes idle entries in batches.
//
// Times are CLOCK_MONOTONIC_COARSE (bpf_ktime_get_coarse_ns): a read of
// the last tick's time, where bpf_ktime_get_ns reads the clock source (35
// ns a packet here, a quarter of the program). The kernel's first/last seen
// are therefore up to one tick (4 ms at HZ=250) early; userspace keeps the
// exact times of the packets it sees, and only a flow whose last packets
// were cut takes its end time from the kernel. The coarse clock moves
// only at a tick, so each CPU reads it once per tick and keeps it beside
// its counters, keyed by jiffies (bpf_jiffies64, which the verifier
// inlines as one load): the helper's sequence-counted read of the
// timekeeper was 8 % of the program's samples on the bulk mix.
//
// The flow map stays a shared hash, not per-CPU: a flow's packets arrive
// on any CPU and the budget is one number per flow direction, which
// per-CPU slots could only approximate, and a per-CPU hash holds a value
// per CPU for every entry (64 CPUs x 262,144 entries x 136 bytes = 2.3
// GB); the counters and the map-full rate limit are per-CPU.
//
// The program needs Linux 5.12 (BPF atomics, ring buffer); it uses no
// CO-RE and only uapi headers.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "tapir.h"

char __license[] SEC("license") = "Dual BSD/GPL";

// Types only userspace reads (ring buffer events, counter indexes),
// exported to BTF so that bpf2go -type generates them for Go.
struct btf_exports {
	enum counter counter;
	struct event event;
};
volatile const struct btf_exports tapir_btf_exports;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536); // set from configuration before load
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} tapir_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cutoff_config);
} tapir_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counters);
} tapir_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} tapir_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pin_net_key);
	__type(value, __u8);
} tapir_pin_nets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} tapir_pin_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct flow_key);
	__type(value, __u8);
} tapir_pin_flows SEC(".maps");

// Last map-full event per CPU, to rate-limit them.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tapir_full_at SEC(".maps");

// counters_get returns this CPU's counters (NULL only if the map is
// broken, then nothing is counted).
static __always_inline struct counters *counters_get(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&tapir_counters, &zero);
}

static __always_inline void count(struct counters *c, enum counter idx, __u64 n)
{
	if (c)
		c->n[idx] += n; // per-CPU: no atomics needed
}

struct pkt {
	struct flow_key key;
	__u32 len;   // wire length, a stripped VLAN tag included
	__u8 dir;    // 0: A->B of the canonical key, 1: B->A
	__u8 tcp_flags;
};

// addr_less compares 16-byte addresses as big-endian numbers, as
// flow.Tuple.Key does; returns -1, 0 or 1.
static __always_inline int addr_cmp(const __u8 *a, const __u8 *b)
{
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	}
	return 0;
}

// order writes the endpoints into the key in canonical order (the smaller
// address first, or the smaller port when the addresses are equal; c is
// the comparison of src with dst) and sets the packet's direction.
static __always_inline void order(struct pkt *p, const __u8 *src, const __u8 *dst,
				  __u16 sp, __u16 dp, int c)
{
	if (c < 0 || (c == 0 && sp <= dp)) {
		__builtin_memcpy(p->key.a, src, 16);
		__builtin_memcpy(p->key.b, dst, 16);
		p->key.port_a = sp;
		p->key.port_b = dp;
		p->dir = 0;
	} else {
		__builtin_memcpy(p->key.a, dst, 16);
		__builtin_memcpy(p->key.b, src, 16);
		p->key.port_a = dp;
		p->key.port_b = sp;
		p->dir = 1;
	}
}

// tapir_mirror_vxlan_port is the UDP port of the VXLAN mirror
// encapsulation when every capture interface is a VXLAN mirror interface
// (decode.mirror; AWS and Azure traffic mirroring), 0 otherwise. Set
// before load. On such an interface the program strips the outermost
// VXLAN on that port (either port, as decode does) and keys the mirrored
// connection inside with the mirror key, as userspace does; a frame it
// cannot key exactly as userspace does stays untracked.
volatile const __u16 tapir_mirror_vxlan_port = 0;

// MIRROR_KEY_BASE and MIRROR_KEY_SPAN are decode.MirrorKey's: the mirror
// key is MIRROR_KEY_BASE + id % MIRROR_KEY_SPAN.
#define MIRROR_KEY_BASE 4096
#define MIRROR_KEY_SPAN 61440

// udp_tunnel reports whether a UDP datagram is one of the tunnels the
// sensor's decoder takes apart (VXLAN 4789, Geneve 6081, GTP-U 2152,
// Teredo 3544, either port, as decode's defaults). The cut-off leaves
// them untracked: userspace keys their packets on the inner connection,
// while this program sees only the outer one, so a budget spent on the
// tunnel would cut every inner flow inside it (SYNs and FINs included).
static __always_inline int udp_tunnel(__u16 sp, __u16 dp)
{
	return sp == 4789 || dp == 4789 || sp == 6081 || dp == 6081 ||
	       sp == 2152 || dp == 2152 || sp == 3544 || dp == 3544;
}

// parse_l3 parses the IPv4 or IPv6 header at off (proto is the
// ethertype, network order) and the transport ports behind it: p's
// family, proto and TCP flags, the addresses into src and dst (16-byte
// form), the ports into sp and dp (host order), and the transport
// header's offset into l4off. It returns 0, or -1 for a packet the
// cut-off does not track (not TCP, UDP or SCTP, a fragment, cut short).
static __always_inline int parse_l3(struct __sk_buff *skb, __u32 off, __u16 proto, struct pkt *p,
				    __u8 *src, __u8 *dst, __u16 *sp, __u16 *dp, __u32 *l4off)
{
	__u16 ports[2];
	__u8 l4;

	if (proto == bpf_htons(ETH_P_IP)) {
		__u8 vihl;
		__u16 frag;
		if (bpf_skb_load_bytes(skb, off, &vihl, 1) < 0 ||
		    bpf_skb_load_bytes(skb, off + 6, &frag, 2) < 0 ||
		    bpf_skb_load_bytes(skb, off + 9, &l4, 1) < 0)
			return -1;
		if ((vihl >> 4) != 4 || (vihl & 0x0f) < 5)
			return -1;
		if (bpf_ntohs(frag) & 0x3fff)
			return -1; // fragment: userspace attributes it
		__builtin_memset(src, 0, 16);
		__builtin_memset(dst, 0, 16);
		src[10] = dst[10] = src[11] = dst[11] = 0xff;
		if (bpf_skb_load_bytes(skb, off + 12, &src[12], 4) < 0 ||
		    bpf_skb_load_bytes(skb, off + 16, &dst[12], 4) < 0)
			return -1;
		p->key.family = FAMILY_IPV4;
		off += (vihl & 0x0f) * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, off + 6, &l4, 1) < 0 ||
		    bpf_skb_load_bytes(skb, off + 8, src, 16) < 0 ||
		    bpf_skb_load_bytes(skb, off + 24, dst, 16) < 0)
			return -1;
		p->key.family = FAMILY_IPV6;
		off += 40; // extension headers: not tracked (see below)
	} else {
		return -1;
	}
	if (l4 != IPPROTO_TCP && l4 != IPPROTO_UDP && l4 != IPPROTO_SCTP)
		return -1;
	if (bpf_skb_load_bytes(skb, off, ports, 4) < 0)
		return -1;
	p->tcp_flags = 0;
	if (l4 == IPPROTO_TCP && bpf_skb_load_bytes(skb, off + 13, &p->tcp_flags, 1) < 0)
		return -1;
	p->key.proto = l4;
	*sp = bpf_ntohs(ports[0]);
	*dp = bpf_ntohs(ports[1]);
	*l4off = off;
	return 0;
}

// is_mirror reports whether a UDP datagram with ports sp, dp is the
// VXLAN mirror encapsulation.
static __always_inline int is_mirror(__u16 sp, __u16 dp)
{
	__u16 port = tapir_mirror_vxlan_port;
	return port != 0 && (sp == port || dp == port);
}

// parse_mirror keys the frame inside the VXLAN mirror encapsulation whose
// header starts at off: the mirrored connection, with the mirror key in
// inner_vlan and the VNI in mirror, the outer VLAN tag (vlan) kept, as
// decode does with Options.Mirror. It returns 0, or -1 when the
// mirrored frame is one the program does not track, or one userspace
// would key otherwise (VLAN tags inside, another tunnel inside).
static __always_inline int parse_mirror(struct __sk_buff *skb, __u32 off, struct pkt *p, __u16 vlan)
{
	__u8 vx[8];
	__u16 proto;
	__u8 src[16], dst[16];
	__u16 sp, dp;
	__u32 l4off;

	if (bpf_skb_load_bytes(skb, off, vx, 8) < 0)
		return -1;
	__u32 vni = (__u32)vx[4] << 16 | (__u32)vx[5] << 8 | vx[6];
	off += 8; // the mirrored Ethernet frame
	if (bpf_skb_load_bytes(skb, off + 12, &proto, 2) < 0)
		return -1;
	if (parse_l3(skb, off + ETH_HLEN, proto, p, src, dst, &sp, &dp, &l4off) < 0)
		return -1; // VLAN tags, non-IP, untracked transport
	if (p->key.proto == IPPROTO_UDP && udp_tunnel(sp, dp))
		return -1; // a tunnel inside the mirror: userspace keys its inner connections
	p->key.vlan = vlan;
	p->key.inner_vlan = MIRROR_KEY_BASE + vni % MIRROR_KEY_SPAN;
	p->key.mirror = vni;
	order(p, src, dst, sp, dp, addr_cmp(src, dst));
	return 0;
}

// parse fills p from the Ethernet frame in skb. It returns 0 for a packet
// the cut-off tracks (TCP, UDP or SCTP over IPv4/IPv6, not a fragment,
// at most two VLAN tags, not a UDP tunnel; on a VXLAN mirror interface
// the same inside the mirror encapsulation), -1 for anything else.
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	__u32 off = ETH_HLEN;
	__u16 proto;
	__u16 outer = 0, inner = 0;
	int ntags = 0;
	__u8 src[16] = {}, dst[16] = {};
	__u16 sp, dp;
	__u32 l4off;

	if (skb->vlan_present) {
		outer = skb->vlan_tci & 0x0fff;
		ntags = 1;
		p->len = skb->len + 4;
	} else {
		p->len = skb->len;
	}
	if (bpf_skb_load_bytes(skb, 12, &proto, 2) < 0)
		return -1;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		__u16 tci;
		if (bpf_skb_load_bytes(skb, off, &tci, 2) < 0 ||
		    bpf_skb_load_bytes(skb, off + 2, &proto, 2) < 0)
			return -1;
		if (ntags == 0)
			outer = bpf_ntohs(tci) & 0x0fff;
		else if (ntags == 1)
			inner = bpf_ntohs(tci) & 0x0fff;
		ntags++;
		off += 4;
	}
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
		return -1; // more tags than userspace keys on
	if (parse_l3(skb, off, proto, p, src, dst, &sp, &dp, &l4off) < 0)
		return -1;
	if (p->key.proto == IPPROTO_UDP && is_mirror(sp, dp))
		return parse_mirror(skb, l4off + 8, p, outer);
	p->key.vlan = outer;
	p->key.inner_vlan = inner;
	if (p->key.proto == IPPROTO_UDP && udp_tunnel(sp, dp))
		return -1; // a tunnel: userspace keys its inner connections
	order(p, src, dst, sp, dp, addr_cmp(src, dst));
	return 0;
}

// FAST_HDR is how many leading bytes parse_fast needs at most: Ethernet,
// an IPv6 header and the first 14 bytes of TCP. FAST_HDR4 is the same
// for IPv4 (a 20-byte header), which it loads first.
//
// Loading no more than the headers matters: a TCP segment's linear part
// often ends right behind its headers (54 bytes with no TCP options, 66
// with timestamps) and the payload sits in page fragments. A load that
// reaches past the linear part takes skb_copy_bits' slow path and reads
// the first payload bytes from a page no one has touched on this CPU:
// loading 68 bytes for every IPv4 packet cost more than the rest of the
// program together on bpf/bench.sh's bulk mix (perf: __pi_memcpy under
// skb_copy_bits, 36 of 92 samples in the program).
#define FAST_HDR 68
#define FAST_HDR4 48

// parse_fast parses the common frames, with no VLAN tag in the packet
// bytes (a tag the NIC or veth stripped is skb metadata) and TCP, UDP or
// SCTP right behind a 20-byte IPv4 header or an IPv6 header, from a
// single bpf_skb_load_bytes of the first FAST_HDR bytes, where parse makes
// one helper call per field. It returns 0 (parsed) or -1 (not tracked)
// as parse does, or 1 when the frame needs parse.
static __always_inline int parse_fast(struct __sk_buff *skb, struct pkt *p)
{
	__u8 h[FAST_HDR] = {};
	__u32 n = skb->len;
	__u32 off;
	__u8 l4;

	if (n < ETH_HLEN + 20 + 8)
		return 1;
	if (n > FAST_HDR)
		n = FAST_HDR;
	if (bpf_skb_load_bytes(skb, 0, h, n < FAST_HDR4 ? n : FAST_HDR4) < 0)
		return 1;
	__u16 proto = (__u16)h[12] << 8 | h[13];
	if (proto == ETH_P_IPV6 && n > FAST_HDR4 &&
	    bpf_skb_load_bytes(skb, FAST_HDR4, &h[FAST_HDR4], n - FAST_HDR4) < 0)
		return 1;
	if (proto == ETH_P_IP && n > FAST_HDR4)
		n = FAST_HDR4;
	if (proto == ETH_P_IP) {
		if (h[14] != 0x45)
			return 1; // options, or not IPv4
		if ((h[20] & 0x3f) | h[21])
			return -1; // fragment: userspace attributes it
		l4 = h[23];
		off = ETH_HLEN + 20;
	} else if (proto == ETH_P_IPV6) {
		if ((h[14] >> 4) != 6)
			return 1;
		l4 = h[20];
		off = ETH_HLEN + 40;
	} else {
		return 1;
	}
	if (l4 != IPPROTO_TCP && l4 != IPPROTO_UDP && l4 != IPPROTO_SCTP)
		return -1;
	if (off + (l4 == IPPROTO_TCP ? 14 : 4) > n)
		return 1;
	p->len = skb->len;
	__u16 outer = 0;
	if (skb->vlan_present) {
		outer = skb->vlan_tci & 0x0fff;
		p->len += 4;
	}
	p->tcp_flags = 0;
	if (l4 == IPPROTO_TCP)
		p->tcp_flags = h[off + 13];
	p->key.proto = l4;
	p->key.vlan = outer;
	p->key.inner_vlan = 0;
	__u16 sp = (__u16)h[off] << 8 | h[off + 1];
	__u16 dp = (__u16)h[off + 2] << 8 | h[off + 3];
	if (l4 == IPPROTO_UDP && is_mirror(sp, dp))
		return 1; // the mirror encapsulation: parse takes it apart
	if (l4 == IPPROTO_UDP && udp_tunnel(sp, dp))
		return -1; // a tunnel: userspace keys its inner connections
	__u8 src[16] = {}, dst[16] = {};
	if (proto == ETH_P_IP) {
		p->key.family = FAMILY_IPV4;
		src[10] = dst[10] = src[11] = dst[11] = 0xff;
		__builtin_memcpy(&src[12], &h[26], 4);
		__builtin_memcpy(&dst[12], &h[30], 4);
		__u32 s4 = (__u32)h[26] << 24 | (__u32)h[27] << 16 | (__u32)h[28] << 8 | h[29];
		__u32 d4 = (__u32)h[30] << 24 | (__u32)h[31] << 16 | (__u32)h[32] << 8 | h[33];
		order(p, src, dst, sp, dp, s4 < d4 ? -1 : s4 > d4);
	} else {
		p->key.family = FAMILY_IPV6;
		__builtin_memcpy(src, &h[22], 16);
		__builtin_memcpy(dst, &h[38], 16);
		order(p, src, dst, sp, dp, addr_cmp(src, dst));
	}
	return 0;
}

static __always_inline void map_full(struct counters *c, __u64 now)
{
	__u32 zero = 0;
	count(c, CNT_MAP_FULL, 1);
	__u64 *at = bpf_map_lookup_elem(&tapir_full_at, &zero);
	if (!at || now - *at < 100000000ULL)
		return;
	*at = now;
	struct event ev = {.type = EVENT_MAP_FULL};
	if (bpf_ringbuf_output(&tapir_events, &ev, sizeof(ev), 0) < 0)
		count(c, CNT_EVENT_DROPS, 1);
}

// flow_get returns the flow's entry, creating it when absent. NULL means
// the map is full (counted).
static __always_inline struct flow_val *flow_get(struct counters *c, struct pkt *p, __u64 now)
{
	struct flow_val *v = bpf_map_lookup_elem(&tapir_flows, &p->key);
	if (v)
		return v;
	struct flow_val zero = {};
	long err = bpf_map_update_elem(&tapir_flows, &p->key, &zero, BPF_NOEXIST);
	if (err == 0) {
		__u32 k = 0;
		struct cutoff_config *cfg = bpf_map_lookup_elem(&tapir_config, &k);
		count(c, CNT_NEW_FLOWS, 1);
		if (cfg && (cfg->flags & CFG_NEW_FLOW_EVENTS)) {
			struct event ev = {.type = EVENT_NEW_FLOW, .key = p->key};
			if (bpf_ringbuf_output(&tapir_events, &ev, sizeof(ev), 0) < 0)
				count(c, CNT_EVENT_DROPS, 1);
		}
	} else if (err != -17 /* EEXIST: another CPU created it */) {
		map_full(c, now);
		return NULL;
	}
	return bpf_map_lookup_elem(&tapir_flows, &p->key);
}

// pinned re-evaluates the pins of a flow about to be cut.
static __always_inline int pinned(struct flow_key *k)
{
	struct pin_net_key nk = {.prefixlen = 128};
	__builtin_memcpy(nk.addr, k->a, 16);
	if (bpf_map_lookup_elem(&tapir_pin_nets, &nk))
		return 1;
	__builtin_memcpy(nk.addr, k->b, 16);
	if (bpf_map_lookup_elem(&tapir_pin_nets, &nk))
		return 1;
	if (bpf_map_lookup_elem(&tapir_pin_ports, &k->port_a) ||
	    bpf_map_lookup_elem(&tapir_pin_ports, &k->port_b))
		return 1;
	return bpf_map_lookup_elem(&tapir_pin_flows, k) != NULL;
}

// coarse_now returns bpf_ktime_get_coarse_ns(), read once per tick per
// CPU: jiffies and the coarse clock advance together at each tick.
static __always_inline __u64 coarse_now(struct counters *c)
{
	__u64 j = bpf_jiffies64();
	if (!c)
		return bpf_ktime_get_coarse_ns();
	if (c->clock_jiffies != j) {
		c->clock_ns = bpf_ktime_get_coarse_ns();
		c->clock_jiffies = j;
	}
	return c->clock_ns;
}

// account adds the packet to its direction's counters. The coarse clock
// moves once a tick, so last_ns is written only when it changed.
static __always_inline void account(struct counters *c, struct dir_stats *d, struct pkt *p, __u64 now)
{
	__sync_fetch_and_add(&d->packets, 1);
	__sync_fetch_and_add(&d->bytes, p->len);
	if (d->first_ns == 0)
		__sync_val_compare_and_swap(&d->first_ns, 0, now);
	if (d->last_ns != now)
		d->last_ns = now;
	if (p->tcp_flags && (d->tcp_flags & p->tcp_flags) != p->tcp_flags)
		__sync_fetch_and_or(&d->tcp_flags, (__u32)p->tcp_flags);
	count(c, CNT_ACCOUNTED, 1);
}

SEC("socket")
int tapir_cutoff(struct __sk_buff *skb)
{
	struct pkt p = {};
	struct counters *c = counters_get();
	int r = parse_fast(skb, &p);
	if (r > 0)
		r = parse(skb, &p);
	if (r < 0) {
		count(c, CNT_UNTRACKED, 1);
		return skb->len; // untracked traffic is captured whole
	}
	__u64 now = coarse_now(c);
	struct flow_val *v = flow_get(c, &p, now);
	if (!v)
		return skb->len; // map full: fail open (userspace budget still applies)
	struct dir_stats *d = &v->dir[p.dir & 1];
	account(c, d, &p, now);
	__u32 zero = 0;
	struct cutoff_config *cfg = bpf_map_lookup_elem(&tapir_config, &zero);
	if (!cfg || cfg->budget == 0)
		return skb->len;
	__u64 stored = d->stored_bytes;
	if (stored < cfg->budget) {
		__u32 n = p.len;
		if (cfg->snaplen && n > cfg->snaplen)
			n = cfg->snaplen;
		__sync_fetch_and_add(&d->stored_bytes, n);
		__sync_fetch_and_add(&d->stored_packets, 1);
		d->pass_ns = now;
		count(c, CNT_PASSED, 1);
		return skb->len;
	}
	if (p.tcp_flags & (TCP_FIN | TCP_SYN | TCP_RST)) {
		d->pass_ns = now;
		count(c, CNT_PASSED_CONTROL, 1);
		return skb->len;
	}
	if (v->pin_gen != cfg->pin_gen) {
		v->pinned = pinned(&p.key);
		v->pin_gen = cfg->pin_gen;
	}
	if (v->pinned) {
		count(c, CNT_PASSED_PINNED, 1);
		return skb->len;
	}
	if (cfg->keepalive_ns && now - d->pass_ns >= cfg->keepalive_ns) {
		d->pass_ns = now;
		count(c, CNT_PASSED_KEEPALIVE, 1);
		return skb->len;
	}
	count(c, CNT_CUT_PACKETS, 1);
	count(c, CNT_CUT_BYTES, p.len);
	return 0;
}
