package ebpf

// Names and constants of bpf/tapir.c and bpf/tapir.h the Go side refers
// to; names_test.go checks them against the C sources.
const (
	mapFlows    = "tapir_flows"
	mapConfig   = "tapir_config"
	mapCounters = "tapir_counters"
	mapEvents   = "tapir_events"
	mapPinNets  = "tapir_pin_nets"
	mapPinPorts = "tapir_pin_ports"
	mapPinFlows = "tapir_pin_flows"
	mapFullAt   = "tapir_full_at"

	progCutoff = "tapir_cutoff"

	cfgNewFlowEvents = 1 // CFG_NEW_FLOW_EVENTS
	eventNewFlow     = 1 // EVENT_NEW_FLOW
	eventMapFull     = 2 // EVENT_MAP_FULL
)
