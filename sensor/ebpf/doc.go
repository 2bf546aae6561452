// Package ebpf is the sensor's eBPF data path (the program in bpf/): an
// eBPF socket filter on the AF_PACKET capture sockets that, with one parse
// and one flow-map lookup per packet, keeps exact per-flow counters of
// every packet the interface carries and cuts off the packets of a flow
// direction past its capture budget before the kernel copies them into
// the ring. TCP SYN/FIN/RST, pinned flows and
// one keepalive packet per direction per Config.Keepalive always pass.
//
// The userspace flow table keeps running the same budget (and the same
// pins, through flowtable.Config.BudgetExempt), so it stores exactly what
// it would without the kernel's help; MergeSink then replaces the seen
// counters of each record with the kernel's, which saw every packet. When
// the data path cannot load (no CAP_BPF, kernel older than 6.6) the sensor
// runs the same budget in userspace and the records are the same.
//
// Nothing is sent to userspace per packet: a ring buffer carries new-flow
// events (only while Community ID pins exist, to resolve them) and
// rate-limited map-full events; userspace reads the flow map in batches
// and deletes idle entries; every packet the kernel could not account is
// counted (KernelCounters).
//
// A Datapath is New (inert), Start (load, attach, goroutines), Stop
// (detach, close; idempotent). Its methods are safe for concurrent use.
package ebpf
