//go:build linux

package ebpf

import (
	"encoding/binary"
	"unsafe"

	"github.com/tapir-sensor/tapir/bpf"
)

const sizeofEvent = unsafe.Sizeof(bpf.TapirEvent{})

// decodeEvent decodes a ring buffer sample (struct event, native byte
// order: little endian on the bpfel target).
func decodeEvent(b []byte, ev *bpf.TapirEvent) {
	ev.Type = binary.LittleEndian.Uint32(b[0:])
	k := &ev.Key
	o := 8
	copy(k.A[:], b[o:o+16])
	copy(k.B[:], b[o+16:o+32])
	k.PortA = binary.LittleEndian.Uint16(b[o+32:])
	k.PortB = binary.LittleEndian.Uint16(b[o+34:])
	k.Vlan = binary.LittleEndian.Uint16(b[o+36:])
	k.InnerVlan = binary.LittleEndian.Uint16(b[o+38:])
	k.Proto = b[o+40]
	k.Family = b[o+41]
}
