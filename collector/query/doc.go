// Package query is tapir's flow query language, modelled on Stenographer's:
//
//	host 1.2.3.4 and port 53
//	net 10.0.0.0/8 or net 192.168.0.0 mask 255.255.0.0
//	(tcp or proto 132) and not vlan 10
//	host 2001:db8::1 and after 5m ago and before 2024-05-01T10:00:00Z
//
// Terms: host ADDR, net PREFIX (or ADDR mask MASK), port N, portrange
// N-M, proto NAME|N (and bare tcp, udp, icmp, icmp6, sctp), ip, ip6,
// vlan N, before TIME, after TIME. Operators: not (!), and (&&), or (||),
// parentheses; "not" binds tightest, then "and", then "or". IPv4 and IPv6
// throughout.
//
// tcpdump's filters are accepted with tcpdump's meaning, per flow rather
// than per packet:
//
//	tcp port 80                  (protocol qualifier: tcp and port 80)
//	src host 10.0.0.1            (src: the flow's initiator; dst: its responder)
//	dst port 443 or 8443         (a bare ID reuses the last qualifiers)
//	src and dst net 10.0.0.0/8   (both ends; "src or dst" is either, the default)
//	udp dst portrange 1-1023
//	host 10.0.0.1 and not port 22
//
// A Query matches flow records (Match) and carries the time window the
// store has to scan (From, To): the query's after/before bounds, completed
// with a default window when it states none, so that no query scans the
// whole store. Parse enforces the cost limits of Config (length, nodes,
// nesting depth, window length).
//
// Time terms match flows by overlap: "after T" keeps flows still active at
// or after T, "before T" keeps flows that started at or before T.
package query
