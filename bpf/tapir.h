// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// Types shared by tapir's eBPF programs and the Go side (exported by
// bpf2go -type, never mirrored by hand).
#ifndef TAPIR_H
#define TAPIR_H

#include <linux/types.h>
#include <linux/pkt_cls.h>

#define FAMILY_IPV4 4
#define FAMILY_IPV6 6

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04

// flow_key is flow.Key: the canonical (Community ID ordered) endpoints,
// addresses in 16-byte form (IPv4 mapped into ::ffff:0:0/96), ports in
// host order, VLAN IDs outer and inner (0 = untagged). On a VXLAN mirror
// interface inner_vlan is the mirror key (4096 + VNI modulo 61440, as
// decode.MirrorKey) and mirror the whole VNI (flow.Key.Mirror); 0
// elsewhere.
struct flow_key {
	__u8 a[16];
	__u8 b[16];
	__u16 port_a;
	__u16 port_b;
	__u16 vlan;
	__u16 inner_vlan;
	__u8 proto;
	__u8 family;
	__u8 pad[2];
	__u32 mirror;
};

// dir_stats counts one direction of a flow. Times are CLOCK_MONOTONIC ns,
// read from the coarse clock (one-tick resolution, see tapir.c).
// stored_* count what the cut-off passed under the budget; pass_ns is the
// last time it passed a packet of this direction.
struct dir_stats {
	__u64 packets;
	__u64 bytes;
	__u64 first_ns;
	__u64 last_ns;
	__u64 stored_packets;
	__u64 stored_bytes;
	__u64 pass_ns;
	__u32 tcp_flags;
	__u32 pad;
};

// flow_val is one flow's entry: dir[0] is A->B of the key. The pin state,
// read for every packet past the budget, comes first, beside the key the
// lookup has just read, so that it costs no cache line of its own.
struct flow_val {
	__u32 pin_gen; // tapir_config.pin_gen when pinned was evaluated
	__u8 pinned;
	__u8 pad[3];
	struct dir_stats dir[2];
};

#define CFG_NEW_FLOW_EVENTS 1

// cutoff_config is the single entry of tapir_config.
struct cutoff_config {
	__u64 budget;       // bytes per flow direction; 0 = cut-off off
	__u64 keepalive_ns; // pass one packet per direction this often; 0 = never
	__u32 snaplen;      // bytes stored per packet (budget accounting)
	__u32 pin_gen;      // bumped by userspace when pins change
	__u32 flags;        // CFG_*
	__u32 pad;
};

struct pin_net_key {
	__u32 prefixlen;
	__u8 addr[16];
};

#define EVENT_NEW_FLOW 1
#define EVENT_MAP_FULL 2

struct event {
	__u32 type;
	__u32 pad;
	struct flow_key key;
};

// Indexes of counters.n, the single per-CPU entry of tapir_counters.
enum counter {
	CNT_ACCOUNTED,
	CNT_UNTRACKED,
	CNT_NEW_FLOWS,
	CNT_MAP_FULL,
	CNT_EVENT_DROPS,
	CNT_PASSED,
	CNT_PASSED_CONTROL,
	CNT_PASSED_PINNED,
	CNT_PASSED_KEEPALIVE,
	CNT_CUT_PACKETS,
	CNT_CUT_BYTES,
	CNT_MAX,
};

// counters is the value of tapir_counters (one per CPU): one lookup per
// packet reaches every counter it bumps. clock_jiffies and clock_ns cache
// the coarse clock for the current tick (see coarse_now in tapir.c).
struct counters {
	__u64 clock_jiffies;
	__u64 clock_ns;
	__u64 n[CNT_MAX];
};

#endif
