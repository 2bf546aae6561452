package appmeta

import (
	"bytes"
	"testing"
)

// TestDirDone: a malformed DNS query gives up the client's direction
// only; DirDone says so, and Packet then returns false for that
// direction without counting its packets, which is what lets a caller
// skip the call.
func TestDirDone(t *testing.T) {
	x, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	f := x.NewFlow(false)
	bad := bytes.Repeat([]byte{0x61}, 158) // trafgen's payload: not a DNS message
	if x.Packet(f, true, 0, bad, 4000, 53) {
		t.Fatal("the flow was given up whole after one direction's malformed packet")
	}
	if !f.DirDone(true) || f.DirDone(false) {
		t.Fatalf("DirDone(client) %v, DirDone(server) %v; want true, false", f.DirDone(true), f.DirDone(false))
	}
	pkts := f.dir[0].pkts
	if x.Packet(f, true, 0, bad, 4000, 53) || f.dir[0].pkts != pkts || f.done {
		t.Fatal("a packet of a given-up direction changed the flow or finished it")
	}
}
