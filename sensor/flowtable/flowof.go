package flowtable

import (
	"time"
	"unsafe"

	"github.com/tapir-sensor/tapir/flow"
)

// FlowOf returns the identity of the open flow whose state pointer Packet
// returned: its flow ID, canonical key and Community ID. The sensor calls
// it when it opens a packet block for the flow. state must come from this
// table and its flow must still be open (same contract as the pointer).
func (t *Table[T]) FlowOf(state *T) (flow.ID, flow.Key, string) {
	var probe entry[T]
	e := (*entry[T])(unsafe.Add(unsafe.Pointer(state), -int(unsafe.Offsetof(probe.user))))
	id := flow.NewID(time.Unix(0, e.start), t.sensorHash, e.seq)
	init := e.key.Forward()
	if e.state&stInitB != 0 {
		init = init.Reverse()
	}
	cid := flow.CommunityID(t.cfg.CommunitySeed, init)
	return id, e.key, cid
}
