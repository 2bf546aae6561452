package flow

import (
	"encoding/json"
	"fmt"
	"time"
)

// ECS is the Elastic Common Schema rendering of a flow record: the nested
// object that `--flows-out`, `tapir flows` and the Kafka flows topic carry.
// Enrichers add their own top-level objects next to these.
type ECS struct {
	Timestamp   time.Time    `json:"@timestamp"`
	ECS         ECSMeta      `json:"ecs"`
	Network     ECSNetwork   `json:"network"`
	Source      ECSEndpoint  `json:"source"`
	Destination ECSEndpoint  `json:"destination"`
	Event       ECSEvent     `json:"event"`
	Tapir       ECSTapir     `json:"tapir"`
	Observer    *ECSObserver `json:"observer,omitempty"`
	// Application metadata (sensor): see AppMeta.
	DNS       *ECSDNS        `json:"dns,omitempty"`
	TLS       *ECSTLS        `json:"tls,omitempty"`
	HTTP      *ECSHTTP       `json:"http,omitempty"`
	URL       *ECSURL        `json:"url,omitempty"`
	UserAgent *ECSUserAgent  `json:"user_agent,omitempty"`
	Extra     map[string]any `json:"-"`
}

// ECSVersion is the ECS version the records' field set follows: ECS
// requires it in ecs.version on every event.
const ECSVersion = "9.4.0"

// ECSMeta is ECS ecs.*.
type ECSMeta struct {
	Version string `json:"version"`
}

// ECSNetwork is ECS network.*.
type ECSNetwork struct {
	CommunityID string `json:"community_id,omitempty"`
	Transport   string `json:"transport,omitempty"`
	IANANumber  string `json:"iana_number,omitempty"`
	EtherType   string `json:"ethertype,omitempty"` // tapir extension, link pseudo flows only
	Type        string `json:"type"`                // ipv4 / ipv6
	Packets     uint64 `json:"packets"`
	Bytes       uint64 `json:"bytes"`
	VLAN        *struct {
		ID string `json:"id"`
	} `json:"vlan,omitempty"`
}

// ECSEndpoint is ECS source.* / destination.*.
type ECSEndpoint struct {
	IP      string `json:"ip,omitempty"`
	MAC     string `json:"mac,omitempty"`
	Port    uint16 `json:"port,omitempty"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// Enrichment (collector): geo, as, domain.
	Geo    *ECSGeo `json:"geo,omitempty"`
	AS     *ECSAS  `json:"as,omitempty"`
	Domain string  `json:"domain,omitempty"`
}

// ECSEvent is ECS event.*.
type ECSEvent struct {
	Kind     string    `json:"kind"`
	Category []string  `json:"category"`
	Type     []string  `json:"type"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Duration int64     `json:"duration"` // nanoseconds, as ECS defines it
	Reason   string    `json:"reason"`
}

// ECSObserver is ECS observer.* (the sensor).
type ECSObserver struct {
	Name     string        `json:"name,omitempty"` // the sensor id
	Hostname string        `json:"hostname,omitempty"`
	IP       string        `json:"ip,omitempty"`   // flow exporters: the exporter's address
	Type     string        `json:"type,omitempty"` // flow exporters: "router"
	Ingress  *ECSInterface `json:"ingress,omitempty"`
	Egress   *ECSInterface `json:"egress,omitempty"`
}

// ECSInterface is observer.ingress / observer.egress: the capture
// interface's name at a sensor, the SNMP ifIndex at a flow exporter.
type ECSInterface struct {
	Interface struct {
		ID   string `json:"id,omitempty"`
		Name string `json:"name,omitempty"`
	} `json:"interface"`
}

// ECSTapir holds tapir's own fields.
type ECSTapir struct {
	FlowID      string            `json:"flow_id"`
	SensorID    string            `json:"sensor_id"`
	Segment     uint32            `json:"segment"`
	Final       bool              `json:"final"`
	VLAN        uint16            `json:"vlan,omitempty"`
	InnerVLAN   uint16            `json:"inner_vlan,omitempty"`
	Source      ECSTapirDir       `json:"source"`
	Destination ECSTapirDir       `json:"destination"`
	Truncated   uint64            `json:"truncated_packets,omitempty"`
	BudgetCut   uint64            `json:"budget_cut_packets,omitempty"`
	ICMP        *ECSTapirICMP     `json:"icmp,omitempty"`
	Exporter    *ECSTapirExporter `json:"exporter,omitempty"` // records from flow exporters
	// Enrichment (collector).
	Rarity       *ECSRarity `json:"rarity,omitempty"`
	DomainSource string     `json:"domain_source,omitempty"` // where destination.domain came from
	// Application metadata and timeline (sensor).
	SSH      *ECSTapirSSH `json:"ssh,omitempty"`
	Timeline *ECSTimeline `json:"timeline,omitempty"`
	// Tunnels is the flow's tunnel chain, outermost first (Record.Tunnels).
	Tunnels []ECSTunnel `json:"tunnels,omitempty"`
	// TunnelFlow marks the record of a tunnel's own connection
	// (Record.IsTunnelFlow); its tunnels[0] is that tunnel.
	TunnelFlow bool `json:"tunnel_flow,omitempty"`
}

// ECSTunnel is one level of a flow's tunnel chain (tapir.tunnels[]): its
// type, the tunnel's own endpoints and IP protocol, and its identifier
// under the type's name (vni, key, session_id or teid), absent when the
// header carries none.
type ECSTunnel struct {
	Type        string       `json:"type"`
	Source      ECSTunnelEnd `json:"source"`
	Destination ECSTunnelEnd `json:"destination"`
	IANANumber  string       `json:"iana_number"`
	VNI         *uint32      `json:"vni,omitempty"`
	Key         *uint32      `json:"key,omitempty"`
	SessionID   *uint32      `json:"session_id,omitempty"`
	TEID        *uint32      `json:"teid,omitempty"`
	// Mirror is true on the mirror encapsulation of a mirror interface.
	Mirror bool `json:"mirror,omitempty"`
}

// ECSTunnelEnd is one end of a tunnel: its address, and its port for the
// tunnels over UDP.
type ECSTunnelEnd struct {
	IP   string `json:"ip"`
	Port uint16 `json:"port,omitempty"`
}

// ECSTapirDir is tapir's per-direction detail.
type ECSTapirDir struct {
	TCPFlags      string `json:"tcp_flags,omitempty"`
	StoredPackets uint64 `json:"stored_packets"`
	StoredBytes   uint64 `json:"stored_bytes"`
	// Asset is the asset inventory entry of this end (collector enrichment).
	Asset *ECSAsset `json:"asset,omitempty"`
}

// ECSTapirICMP carries the ICMP type and code of the first message.
type ECSTapirICMP struct {
	Type uint16 `json:"type"`
	Code uint16 `json:"code"`
}

// TCPFlagsString renders TCP flags as tcpdump letters in a fixed order
// (F S R P . U E C), e.g. "SA" for SYN+ACK, "" for none.
func TCPFlagsString(f uint8) string {
	const letters = "FSRPAUEC"
	var b [8]byte
	n := 0
	for i := 0; i < 8; i++ {
		if f&(1<<i) != 0 {
			b[n] = letters[i]
			n++
		}
	}
	return string(b[:n])
}

// ToECS renders the record in ECS form.
func (r *Record) ToECS() *ECS {
	e := &ECS{Timestamp: r.End.UTC(), ECS: ECSMeta{Version: ECSVersion}}
	t := &r.Tuple
	e.Network = ECSNetwork{
		CommunityID: r.CommunityID,
		Transport:   ProtoName(t.Proto),
		IANANumber:  itoa(uint64(t.Proto)),
		Type:        "ipv4",
		Packets:     r.Source.Packets + r.Destination.Packets,
		Bytes:       r.Source.Bytes + r.Destination.Bytes,
	}
	if t.Family == FamilyIPv6 {
		e.Network.Type = "ipv6"
	}
	if t.VLAN != 0 {
		e.Network.VLAN = &struct {
			ID string `json:"id"`
		}{ID: itoa(uint64(t.VLAN))}
	}
	e.Source = ECSEndpoint{Packets: r.Source.Packets, Bytes: r.Source.Bytes}
	e.Destination = ECSEndpoint{Packets: r.Destination.Packets, Bytes: r.Destination.Bytes}
	if t.Family == FamilyLink {
		e.Network.Type = "link"
		e.Network.Transport = ""
		e.Network.IANANumber = ""
		e.Network.EtherType = fmt.Sprintf("0x%04x", t.SrcPort)
		e.Source.MAC, e.Destination.MAC = macECS(t.Src), macECS(t.Dst)
	} else {
		e.Source.IP, e.Destination.IP = t.Src.Netip(t.Family).String(), t.Dst.Netip(t.Family).String()
	}
	if HasPorts(t.Proto) {
		e.Source.Port, e.Destination.Port = t.SrcPort, t.DstPort
	}
	e.Event = ECSEvent{
		Kind: "event", Category: []string{"network"}, Type: []string{"connection", "end"},
		Start: r.Start.UTC(), End: r.End.UTC(), Duration: r.End.Sub(r.Start).Nanoseconds(),
		Reason: r.Reason.String(),
	}
	if !r.Reason.Final() {
		e.Event.Type[1] = "info"
	}
	e.Tapir = ECSTapir{
		FlowID: r.ID.String(), SensorID: r.SensorID, Segment: r.Segment, Final: r.Reason.Final(),
		VLAN: t.VLAN, InnerVLAN: t.InnerVLAN,
		Source:      ECSTapirDir{TCPFlags: TCPFlagsString(r.Source.TCPFlags), StoredPackets: r.Source.StoredPackets, StoredBytes: r.Source.StoredBytes},
		Destination: ECSTapirDir{TCPFlags: TCPFlagsString(r.Destination.TCPFlags), StoredPackets: r.Destination.StoredPackets, StoredBytes: r.Destination.StoredBytes},
		Truncated:   r.Truncated, BudgetCut: r.BudgetCut,
	}
	if t.Proto == ProtoICMP || t.Proto == ProtoICMPv6 {
		e.Tapir.ICMP = &ECSTapirICMP{Type: t.SrcPort, Code: t.DstPort}
	}
	if r.App != nil {
		r.App.addECS(e)
	}
	if r.Timeline != nil {
		r.Timeline.addECS(e, r.Start)
	}
	if r.Enrichment != nil {
		r.Enrichment.addECS(e)
	}
	e.Tapir.Tunnels = tunnelsECS(r.Tunnels)
	e.Tapir.TunnelFlow = r.IsTunnelFlow()
	e.Observer = &ECSObserver{Name: r.SensorID}
	if r.Interface != "" {
		e.Observer.Ingress = &ECSInterface{}
		e.Observer.Ingress.Interface.Name = r.Interface
	}
	if r.Exported != nil {
		r.Exported.addECS(e)
	}
	return e
}

// tunnelsECS renders a tunnel chain (nil when empty).
func tunnelsECS(c *TunnelChain) []ECSTunnel {
	if c.Len() == 0 {
		return nil
	}
	chain := c.Levels
	out := make([]ECSTunnel, len(chain))
	for i := range chain {
		l := &chain[i]
		o := &out[i]
		o.Type, o.IANANumber = l.Type.String(), itoa(uint64(l.Proto))
		o.Source.IP, o.Destination.IP = l.Src.Netip(l.Family).String(), l.Dst.Netip(l.Family).String()
		if l.Proto == ProtoUDP {
			o.Source.Port, o.Destination.Port = l.SrcPort, l.DstPort
		}
		if l.HasID {
			o.setID(l.Type.IDName(), l.ID)
		}
		o.Mirror = l.Mirror
	}
	return out
}

// setID sets the identifier field called name to id.
func (o *ECSTunnel) setID(name string, id uint32) {
	switch name {
	case "vni":
		o.VNI = &id
	case "key":
		o.Key = &id
	case "session_id":
		o.SessionID = &id
	case "teid":
		o.TEID = &id
	}
}

// MarshalJSON renders the record as ECS JSON. It calls the ECS object's
// MarshalJSON directly: through json.Marshal the already compact output
// would be scanned and copied once more, which was half the cost.
func (r *Record) MarshalJSON() ([]byte, error) {
	return r.ToECS().MarshalJSON()
}

// MarshalJSON renders the ECS object, merging Extra's top-level fields
// (enrichment) beside the standard ones. See AppendJSON.
func (e *ECS) MarshalJSON() ([]byte, error) {
	b, err := e.AppendJSON(nil)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// marshalReflect is MarshalJSON through encoding/json: the reference the
// append encoder matches, and its fallback (Extra fields, errors).
func (e *ECS) marshalReflect() ([]byte, error) {
	type plain ECS
	b, err := json.Marshal((*plain)(e))
	if err != nil || len(e.Extra) == 0 {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range e.Extra {
		if _, taken := m[k]; taken {
			continue
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		m[k] = raw
	}
	return json.Marshal(m)
}

// macECS renders a MAC address the ECS way (upper-case, dash-separated).
func macECS(a Addr) string {
	return fmt.Sprintf("%02X-%02X-%02X-%02X-%02X-%02X", a[0], a[1], a[2], a[3], a[4], a[5])
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}
