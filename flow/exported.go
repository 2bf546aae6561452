package flow

import "strings"

// ExporterSensorPrefix starts the SensorID of records that a router,
// switch or firewall exported (NetFlow, IPFIX, sFlow) rather than a tapir
// sensor saw: "exporter:<address>". Such records have no packets.
const ExporterSensorPrefix = "exporter:"

// IsExporterSensor reports whether a sensor id names a flow exporter.
func IsExporterSensor(sensorID string) bool {
	return strings.HasPrefix(sensorID, ExporterSensorPrefix)
}

// Exported describes where a flow record from a flow exporter came from
// and the values the exporter sent before tapir scaled them. nil on
// records that a tapir sensor made.
//
// The record's counters are scaled by SamplingRate (when it is above 1);
// Raw* keep the values as exported. A unidirectional record (NetFlow v5,
// v9 or IPFIX without RFC 5103 reverse elements, sFlow samples) counts
// only its source direction: Destination stays zero and Biflow is false.
type Exported struct {
	// Exporter is the exporter's address ("192.0.2.1"), the source of the
	// datagrams.
	Exporter string
	// Protocol is "netflow-v5", "netflow-v9", "ipfix" or "sflow".
	Protocol string
	// ObservationDomain is the IPFIX observation domain, NetFlow v9 source
	// id, NetFlow v5 engine type/id (type<<8 | id) or sFlow sub-agent id.
	ObservationDomain uint32
	// InputInterface and OutputInterface are the exporter's SNMP ifIndex
	// values (0 when not exported).
	InputInterface, OutputInterface uint32
	// SamplingRate is 1 in N packets; 0 or 1 means unsampled.
	SamplingRate uint32
	// Raw counters as exported, before scaling.
	RawSourcePackets, RawSourceBytes           uint64
	RawDestinationPackets, RawDestinationBytes uint64
	// Biflow reports that the record carried both directions.
	Biflow bool
}

// ECSTapirExporter is tapir.exporter in ECS JSON.
type ECSTapirExporter struct {
	Address           string `json:"address"`
	Protocol          string `json:"protocol"`
	ObservationDomain uint32 `json:"observation_domain"`
	SamplingRate      uint32 `json:"sampling_rate,omitempty"`
	RawSourcePackets  uint64 `json:"raw_source_packets"`
	RawSourceBytes    uint64 `json:"raw_source_bytes"`
	RawDestPackets    uint64 `json:"raw_destination_packets,omitempty"`
	RawDestBytes      uint64 `json:"raw_destination_bytes,omitempty"`
	Biflow            bool   `json:"biflow"`
}

// addECS adds observer.ip, observer.type, observer.ingress/egress
// interface ids and tapir.exporter.
func (x *Exported) addECS(e *ECS) {
	if e.Observer == nil {
		e.Observer = &ECSObserver{}
	}
	o := e.Observer
	o.IP = x.Exporter
	o.Type = "router"
	if x.InputInterface != 0 {
		if o.Ingress == nil {
			o.Ingress = &ECSInterface{}
		}
		o.Ingress.Interface.ID = itoa(uint64(x.InputInterface))
	}
	if x.OutputInterface != 0 {
		o.Egress = &ECSInterface{}
		o.Egress.Interface.ID = itoa(uint64(x.OutputInterface))
	}
	e.Tapir.Exporter = &ECSTapirExporter{
		Address: x.Exporter, Protocol: x.Protocol, ObservationDomain: x.ObservationDomain,
		SamplingRate: x.SamplingRate, RawSourcePackets: x.RawSourcePackets, RawSourceBytes: x.RawSourceBytes,
		RawDestPackets: x.RawDestinationPackets, RawDestBytes: x.RawDestinationBytes, Biflow: x.Biflow,
	}
}
