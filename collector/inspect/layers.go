package inspect

import (
	"fmt"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Layer is one protocol layer of a packet: its name and a one-line
// summary of its fields.
type Layer struct {
	Name    string `json:"name"`
	Summary string `json:"summary"`
}

// Layers breaks a frame of the given pcap link type into its protocol
// layers, outermost first, each with a summary. A part the decoder could
// not take apart ends the list as "Malformed" with its error. It never
// panics on malformed frames.
func Layers(link uint16, frame []byte) []Layer {
	p := decodePacket(link, frame)
	out := []Layer{{Name: "Frame", Summary: fmt.Sprintf("%d bytes captured", len(frame))}}
	for _, l := range p.Layers() {
		out = append(out, Layer{Name: layerName(l), Summary: layerSummary(l)})
	}
	return out
}

// layerName is the layer's protocol name.
func layerName(l gopacket.Layer) string {
	switch l.LayerType() {
	case gopacket.LayerTypePayload:
		return "Data"
	case gopacket.LayerTypeDecodeFailure:
		return "Malformed"
	}
	return l.LayerType().String()
}

// layerSummary renders the fields an investigator reads first.
func layerSummary(l gopacket.Layer) string {
	switch v := l.(type) {
	case *layers.Ethernet:
		return fmt.Sprintf("Src: %s, Dst: %s, Type: %s", v.SrcMAC, v.DstMAC, v.EthernetType)
	case *layers.Dot1Q:
		return fmt.Sprintf("VLAN ID: %d, Priority: %d, Type: %s", v.VLANIdentifier, v.Priority, v.Type)
	case *layers.LinuxSLL:
		return fmt.Sprintf("Packet type: %d, Addr: %x, Type: %s", v.PacketType, v.Addr, v.EthernetType)
	case *layers.IPv4:
		return fmt.Sprintf("Src: %s, Dst: %s, TTL: %d, Protocol: %s, Length: %d, ID: 0x%04x, Flags: %s, Fragment offset: %d",
			v.SrcIP, v.DstIP, v.TTL, v.Protocol, v.Length, v.Id, v.Flags, int(v.FragOffset)*8)
	case *layers.IPv6:
		return fmt.Sprintf("Src: %s, Dst: %s, Hop limit: %d, Next header: %s, Payload length: %d, Flow label: 0x%05x",
			v.SrcIP, v.DstIP, v.HopLimit, v.NextHeader, v.Length, v.FlowLabel)
	case *layers.TCP:
		return fmt.Sprintf("Src Port: %d, Dst Port: %d, Seq: %d, Ack: %d, Flags: [%s], Win: %d, Len: %d",
			v.SrcPort, v.DstPort, v.Seq, v.Ack, strings.Join(tcpFlags(v), ", "), v.Window, len(v.Payload))
	case *layers.UDP:
		return fmt.Sprintf("Src Port: %d, Dst Port: %d, Length: %d", v.SrcPort, v.DstPort, v.Length)
	case *layers.ICMPv4:
		return fmt.Sprintf("Type: %d, Code: %d, %s", v.TypeCode.Type(), v.TypeCode.Code(), icmpSummary(v, -1))
	case *layers.ICMPv6:
		return fmt.Sprintf("Type: %d, Code: %d, %s", v.TypeCode.Type(), v.TypeCode.Code(), icmp6Summary(v))
	case *layers.DNS:
		return dnsSummary(v)
	case *layers.ARP:
		return arpSummary(v)
	case *gopacket.DecodeFailure:
		return v.Error().Error()
	}
	return fmt.Sprintf("%d bytes", len(l.LayerContents())+len(l.LayerPayload()))
}
