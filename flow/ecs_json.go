package flow

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// The append-style ECS encoder. It writes the same bytes encoding/json
// writes for the ECS struct (field order, omitempty, escaping), without
// reflection or the final copy: encoding/json was most of --flows-out's
// cost on a many-flows trace. The rare optional objects (application
// metadata, enrichment, exporter, timeline) and strings that need escaping
// go through encoding/json, so their bytes are encoding/json's by
// construction. Anything the fast path cannot render (a time outside
// years 0-9999, a marshalling error) makes the caller fall back to
// encoding/json for the whole object, errors included.

// AppendJSON appends the record's ECS JSON (as MarshalJSON renders it) to
// b. On error b is returned unchanged. A plain sensor record (no
// application metadata, timeline, tunnels, enrichment or exporter) is
// written straight from the record without building the ECS object
// (appendPlain); any other goes through ToECS.
func (r *Record) AppendJSON(b []byte) ([]byte, error) {
	if r.plainJSON() {
		if out, ok := r.appendPlain(b); ok {
			return out, nil
		}
	}
	return r.ToECS().AppendJSON(b)
}

// AppendJSON appends the ECS object's JSON (as MarshalJSON renders it) to
// b. On error b is returned unchanged.
func (e *ECS) AppendJSON(b []byte) ([]byte, error) {
	if len(e.Extra) == 0 {
		if out, ok := e.appendFast(b); ok {
			return out, nil
		}
	}
	j, err := e.marshalReflect()
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}

// jsonAppender accumulates one object; ok goes false on the first value
// the fast path cannot render.
type jsonAppender struct {
	b  []byte
	ok bool
}

func (e *ECS) appendFast(b []byte) ([]byte, bool) {
	start := len(b)
	a := jsonAppender{b: b, ok: true}
	a.raw(`{"@timestamp":`)
	a.time(e.Timestamp)
	a.raw(`,"ecs":{"version":`)
	a.str(e.ECS.Version)
	a.raw(`},"network":`)
	a.network(&e.Network)
	a.raw(`,"source":`)
	a.endpoint(&e.Source)
	a.raw(`,"destination":`)
	a.endpoint(&e.Destination)
	a.raw(`,"event":`)
	a.event(&e.Event)
	a.raw(`,"tapir":`)
	a.tapir(&e.Tapir)
	if e.Observer != nil {
		a.raw(`,"observer":`)
		a.observer(e.Observer)
	}
	if e.DNS != nil {
		a.raw(`,"dns":`)
		a.dns(e.DNS)
	}
	if e.TLS != nil {
		a.raw(`,"tls":`)
		a.tls(e.TLS)
	}
	if e.HTTP != nil {
		a.raw(`,"http":`)
		a.http(e.HTTP)
	}
	if e.URL != nil {
		a.raw(`,"url":`)
		a.url(e.URL)
	}
	if e.UserAgent != nil {
		a.raw(`,"user_agent":{"original":`)
		a.str(e.UserAgent.Original)
		a.raw(`}`)
	}
	a.raw(`}`)
	if !a.ok {
		return a.b[:start], false
	}
	return a.b, true
}

func (a *jsonAppender) network(n *ECSNetwork) {
	a.b = append(a.b, '{')
	first := true
	a.strField(&first, `"community_id":`, n.CommunityID, true)
	a.strField(&first, `"transport":`, n.Transport, true)
	a.strField(&first, `"iana_number":`, n.IANANumber, true)
	a.strField(&first, `"ethertype":`, n.EtherType, true)
	a.strField(&first, `"type":`, n.Type, false)
	a.uintField(&first, `"packets":`, n.Packets, false)
	a.uintField(&first, `"bytes":`, n.Bytes, false)
	if n.VLAN != nil {
		a.key(&first, `"vlan":`)
		a.raw(`{"id":`)
		a.str(n.VLAN.ID)
		a.raw(`}`)
	}
	a.b = append(a.b, '}')
}

func (a *jsonAppender) endpoint(p *ECSEndpoint) {
	a.b = append(a.b, '{')
	first := true
	a.strField(&first, `"ip":`, p.IP, true)
	a.strField(&first, `"mac":`, p.MAC, true)
	a.uintField(&first, `"port":`, uint64(p.Port), true)
	a.uintField(&first, `"packets":`, p.Packets, false)
	a.uintField(&first, `"bytes":`, p.Bytes, false)
	a.optionalField(&first, `"geo":`, p.Geo != nil, p.Geo)
	a.optionalField(&first, `"as":`, p.AS != nil, p.AS)
	a.strField(&first, `"domain":`, p.Domain, true)
	a.b = append(a.b, '}')
}

func (a *jsonAppender) event(v *ECSEvent) {
	a.raw(`{"kind":`)
	a.str(v.Kind)
	a.raw(`,"category":`)
	a.strs(v.Category)
	a.raw(`,"type":`)
	a.strs(v.Type)
	a.raw(`,"start":`)
	a.time(v.Start)
	a.raw(`,"end":`)
	a.time(v.End)
	a.raw(`,"duration":`)
	a.b = strconv.AppendInt(a.b, v.Duration, 10)
	a.raw(`,"reason":`)
	a.str(v.Reason)
	a.b = append(a.b, '}')
}

func (a *jsonAppender) tapir(t *ECSTapir) {
	a.raw(`{"flow_id":`)
	a.str(t.FlowID)
	a.raw(`,"sensor_id":`)
	a.str(t.SensorID)
	a.raw(`,"segment":`)
	a.b = strconv.AppendUint(a.b, uint64(t.Segment), 10)
	a.raw(`,"final":`)
	a.b = strconv.AppendBool(a.b, t.Final)
	first := false
	a.uintField(&first, `"vlan":`, uint64(t.VLAN), true)
	a.uintField(&first, `"inner_vlan":`, uint64(t.InnerVLAN), true)
	a.raw(`,"source":`)
	a.tapirDir(&t.Source)
	a.raw(`,"destination":`)
	a.tapirDir(&t.Destination)
	a.uintField(&first, `"truncated_packets":`, t.Truncated, true)
	a.uintField(&first, `"budget_cut_packets":`, t.BudgetCut, true)
	if t.ICMP != nil {
		a.raw(`,"icmp":{"type":`)
		a.b = strconv.AppendUint(a.b, uint64(t.ICMP.Type), 10)
		a.raw(`,"code":`)
		a.b = strconv.AppendUint(a.b, uint64(t.ICMP.Code), 10)
		a.raw(`}`)
	}
	a.optionalField(&first, `"exporter":`, t.Exporter != nil, t.Exporter)
	a.optionalField(&first, `"rarity":`, t.Rarity != nil, t.Rarity)
	a.strField(&first, `"domain_source":`, t.DomainSource, true)
	if t.SSH != nil {
		a.raw(`,"ssh":{`)
		f := true
		a.strField(&f, `"client":`, t.SSH.Client, true)
		a.strField(&f, `"server":`, t.SSH.Server, true)
		a.raw(`}`)
	}
	if t.Timeline != nil {
		a.raw(`,"timeline":`)
		a.timeline(t.Timeline)
	}
	a.optionalField(&first, `"tunnels":`, len(t.Tunnels) > 0, t.Tunnels)
	if t.TunnelFlow {
		a.raw(`,"tunnel_flow":true`)
	}
	a.b = append(a.b, '}')
}

func (a *jsonAppender) tapirDir(d *ECSTapirDir) {
	a.b = append(a.b, '{')
	first := true
	a.strField(&first, `"tcp_flags":`, d.TCPFlags, true)
	a.uintField(&first, `"stored_packets":`, d.StoredPackets, false)
	a.uintField(&first, `"stored_bytes":`, d.StoredBytes, false)
	a.optionalField(&first, `"asset":`, d.Asset != nil, d.Asset)
	a.b = append(a.b, '}')
}

func (a *jsonAppender) observer(o *ECSObserver) {
	a.b = append(a.b, '{')
	first := true
	a.strField(&first, `"name":`, o.Name, true)
	a.strField(&first, `"hostname":`, o.Hostname, true)
	a.strField(&first, `"ip":`, o.IP, true)
	a.strField(&first, `"type":`, o.Type, true)
	if o.Ingress != nil {
		a.key(&first, `"ingress":`)
		a.iface(o.Ingress)
	}
	if o.Egress != nil {
		a.key(&first, `"egress":`)
		a.iface(o.Egress)
	}
	a.b = append(a.b, '}')
}

func (a *jsonAppender) iface(i *ECSInterface) {
	a.raw(`{"interface":{`)
	first := true
	a.strField(&first, `"id":`, i.Interface.ID, true)
	a.strField(&first, `"name":`, i.Interface.Name, true)
	a.raw(`}}`)
}

// key writes a comma unless the field is the object's first, then k
// (the quoted name and colon).
func (a *jsonAppender) key(first *bool, k string) {
	if !*first {
		a.b = append(a.b, ',')
	}
	*first = false
	a.b = append(a.b, k...)
}

func (a *jsonAppender) strField(first *bool, k, v string, omitEmpty bool) {
	if omitEmpty && v == "" {
		return
	}
	a.key(first, k)
	a.str(v)
}

func (a *jsonAppender) uintField(first *bool, k string, v uint64, omitEmpty bool) {
	if omitEmpty && v == 0 {
		return
	}
	a.key(first, k)
	a.b = strconv.AppendUint(a.b, v, 10)
}

// optionalField writes a rare sub-object through encoding/json.
func (a *jsonAppender) optionalField(first *bool, k string, present bool, v any) {
	if !present {
		return
	}
	a.key(first, k)
	a.reflect(v)
}

func (a *jsonAppender) reflect(v any) {
	j, err := json.Marshal(v)
	if err != nil {
		a.ok = false
		return
	}
	a.b = append(a.b, j...)
}

func (a *jsonAppender) raw(s string) { a.b = append(a.b, s...) }

// time writes t as time.Time.MarshalJSON does (RFC 3339 with nanoseconds,
// quoted); a time it cannot render (a year outside 0-9999) fails the
// fast path.
func (a *jsonAppender) time(t time.Time) {
	a.b = append(a.b, '"')
	b, err := t.AppendText(a.b)
	if err != nil {
		a.ok = false
		return
	}
	a.b = append(b, '"')
}

func (a *jsonAppender) strs(v []string) {
	if v == nil {
		a.raw("null")
		return
	}
	a.b = append(a.b, '[')
	for i, s := range v {
		if i > 0 {
			a.b = append(a.b, ',')
		}
		a.str(s)
	}
	a.b = append(a.b, ']')
}

// str writes s quoted. Strings of printable ASCII that encoding/json
// leaves alone are copied; any other goes through encoding/json so the
// escaping (HTML characters, control bytes, invalid UTF-8, U+2028) is
// exactly its own.
func (a *jsonAppender) str(s string) {
	if plainJSONString(s) {
		a.b = append(a.b, '"')
		a.b = append(a.b, s...)
		a.b = append(a.b, '"')
		return
	}
	a.reflect(s)
}

// plainJSONString reports whether encoding/json writes s unescaped.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
