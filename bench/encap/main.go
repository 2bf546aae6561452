// Command encap wraps every packet of an Ethernet pcap in a tunnel, to
// build tunnel captures for tests and benchmarks (internal/encaptest does
// the work):
//
//	go run ./bench/encap -kind vxlan -o out.pcap in.pcap[.gz]
//	go run ./bench/encap -kind all -o DIR in.pcap   # one file per kind in DIR
//
// Kinds: ipip4, ipip6 (IP-in-IP over IPv4 / IPv6), gre, gre-teb, erspan1,
// erspan2, erspan3, vxlan, vxlan6, geneve, gtpu, teredo, vxlan-gre,
// gtpu-ipip6. Packets keep their times; frames a tunnel cannot carry are
// copied unchanged. The tunnel endpoints are 192.0.2.1 -> 192.0.2.2 and
// 2001:db8:ffff::1 -> 2001:db8:ffff::2.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/tapir-sensor/tapir/internal/encaptest"
)

func main() {
	kind := flag.String("kind", "vxlan", "tunnel kind, or all")
	out := flag.String("o", "", "output pcap (a directory with -kind all)")
	flag.Parse()
	if flag.NArg() != 1 || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: encap -kind KIND -o OUT IN.pcap")
		os.Exit(2)
	}
	if err := run(*kind, flag.Arg(0), *out); err != nil {
		fmt.Fprintln(os.Stderr, "encap:", err)
		os.Exit(1)
	}
}

// run wraps in into out with one kind, or every kind into the directory
// out.
func run(kind, in, out string) error {
	if kind != "all" {
		if !slices.Contains(encaptest.Kinds, encaptest.Kind(kind)) {
			return fmt.Errorf("unknown kind %q (have %v)", kind, encaptest.Kinds)
		}
		return wrap(encaptest.Kind(kind), in, out)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, k := range encaptest.Kinds {
		if err := wrap(k, in, filepath.Join(out, string(k)+".pcap")); err != nil {
			return err
		}
	}
	return nil
}

func wrap(k encaptest.Kind, in, out string) error {
	wrapped, copied, err := encaptest.File(k, in, out)
	if err != nil {
		return fmt.Errorf("%s: %w", k, err)
	}
	fmt.Fprintf(os.Stderr, "%s: %d packets wrapped, %d copied unchanged -> %s\n", k, wrapped, copied, out)
	return nil
}
