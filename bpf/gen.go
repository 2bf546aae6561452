// Package bpf holds tapir's eBPF programs (tapir.c, tapir.h) and the Go
// bindings bpf2go generates from them (tapir_bpfel.go, tapir_bpfel.o),
// committed so that a normal build needs no clang. `make generate`
// (go generate ./...) rebuilds them with clang and libbpf-dev's headers.
//
// The program and its maps are described in tapir.c; sensor/ebpf loads it
// and attaches it as the socket filter to the capture sockets. It needs Linux 5.12
// or later (BPF atomics, ring buffer).
package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu" -target bpfel -type flow_key -type flow_val -type dir_stats -type cutoff_config -type pin_net_key -type event -type counter -type counters Tapir tapir.c
