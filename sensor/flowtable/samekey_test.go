package flowtable

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"unsafe"

	"github.com/tapir-sensor/tapir/flow"
)

// TestSameKey: sameKey agrees with == on keys that differ in any one byte
// of any field, and on equal keys; a field added to flow.Key (its size or
// field count changes) fails here until sameKey compares it too.
func TestSameKey(t *testing.T) {
	var k flow.Key
	if n := reflect.TypeFor[flow.Key]().NumField(); n != 9 || unsafe.Sizeof(k) != keySize {
		t.Fatalf("flow.Key has %d fields, %d bytes: update sameKey", n, unsafe.Sizeof(k))
	}
	// The layout sameKey's mask assumes: the only padding is bytes 42-43.
	offs := []uintptr{unsafe.Offsetof(k.A), unsafe.Offsetof(k.B), unsafe.Offsetof(k.PortA), unsafe.Offsetof(k.PortB),
		unsafe.Offsetof(k.Proto), unsafe.Offsetof(k.Family), unsafe.Offsetof(k.VLAN), unsafe.Offsetof(k.InnerVLAN), unsafe.Offsetof(k.Mirror)}
	if want := []uintptr{0, 16, 32, 34, 36, 37, 38, 40, 44}; !reflect.DeepEqual(offs, want) {
		t.Fatalf("flow.Key field offsets %v, sameKey assumes %v", offs, want)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := func() flow.Key {
		var k flow.Key
		for i := range k.A {
			k.A[i], k.B[i] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		k.PortA, k.PortB = uint16(rng.Uint32()), uint16(rng.Uint32())
		k.Proto, k.Family = uint8(rng.Uint32()), uint8(rng.Uint32())
		k.VLAN, k.InnerVLAN, k.Mirror = uint16(rng.Uint32()), uint16(rng.Uint32()), rng.Uint32()
		return k
	}
	// Each mutation changes one field in one place.
	muts := []func(k *flow.Key, i int){
		func(k *flow.Key, i int) { k.A[i%16] ^= 1 << (i % 8) },
		func(k *flow.Key, i int) { k.B[i%16] ^= 1 << (i % 8) },
		func(k *flow.Key, i int) { k.PortA ^= 1 << (i % 16) },
		func(k *flow.Key, i int) { k.PortB ^= 1 << (i % 16) },
		func(k *flow.Key, i int) { k.Proto ^= 1 << (i % 8) },
		func(k *flow.Key, i int) { k.Family ^= 1 << (i % 8) },
		func(k *flow.Key, i int) { k.VLAN ^= 1 << (i % 16) },
		func(k *flow.Key, i int) { k.InnerVLAN ^= 1 << (i % 16) },
		func(k *flow.Key, i int) { k.Mirror ^= 1 << (i % 32) },
	}
	for i := range 2000 {
		a := random()
		b := a
		if !sameKey(&a, &b) {
			t.Fatalf("equal keys %+v reported different", a)
		}
		for m, mut := range muts {
			c := a
			mut(&c, i)
			if got, want := sameKey(&a, &c), a == c; got != want {
				t.Fatalf("mutation %d of %+v: sameKey %v, == %v", m, a, got, want)
			}
		}
	}
}

// TestIndexAtMostHalfFull: while flows are created, the index never gets
// more than half full, so that linear probing stays short (at three
// quarters, the lookups of the big input cost up to twice as many
// instructions, depending on the hash seed).
func TestIndexAtMostHalfFull(t *testing.T) {
	tab, err := New[struct{}](Config{MaxFlows: 100_000}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := PacketInfo{WireLen: 60, CapLen: 60}
	for i := range 5000 {
		p.Tuple = flow.Tuple{Src: flow.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Dst: flow.AddrFrom4([4]byte{10, 0, 0, 1}),
			SrcPort: uint16(i), DstPort: 53, Proto: flow.ProtoUDP, Family: flow.FamilyIPv4}
		p.Time = int64(i)
		tab.Packet(&p)
		if 2*tab.Len() > len(tab.index) {
			t.Fatalf("%d flows in an index of %d slots", tab.Len(), len(tab.index))
		}
	}
	if tab.Len() != 5000 {
		t.Fatalf("%d flows open, want 5000", tab.Len())
	}
}

// TestHashSpreadsPortsWhateverTheSeed: keys that differ only in their
// ports (one address pair) spread over the index's slots whatever random
// number the seed is made from, including those that made the hash's
// last factor (k2^seed) a small or even number, which packed such keys
// into a fraction of the slots (a sixteenth with four trailing zeros).
func TestHashSpreadsPortsWhateverTheSeed(t *testing.T) {
	tab, err := New[struct{}](Config{MaxFlows: 100_000}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	const mask = 4095
	for _, low := range []uint64{1, 2, 16, 1 << 10, 1 << 20, 0} {
		tab.seed = hashSeed(k2 ^ low) // the last factor was low
		slots := map[uint64]bool{}
		for i := range 2048 {
			tup := flow.Tuple{Src: flow.AddrFrom4([4]byte{133, 224, 69, 25}), Dst: flow.AddrFrom4([4]byte{133, 224, 69, 26}),
				SrcPort: uint16(30000 + i), DstPort: 7000, Proto: flow.ProtoTCP, Family: flow.FamilyIPv4}
			var k flow.Key
			tup.KeyInto(&k)
			slots[tab.hash(&k)&mask] = true
		}
		// 2048 random keys in 4096 slots fill about 1611 of them.
		if len(slots) < 1400 {
			t.Errorf("seed with last factor %#x: 2048 keys in %d of %d slots", low, len(slots), mask+1)
		}
	}
}
