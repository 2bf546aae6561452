package tapirv1

import "github.com/tapir-sensor/tapir/flow"

// enrichmentFrom converts the collector's enrichment to its wire form.
func enrichmentFrom(x *flow.Enrichment) *Enrichment {
	if x == nil {
		return nil
	}
	p := &Enrichment{Source: endpointEnrichmentFrom(&x.Source), Destination: endpointEnrichmentFrom(&x.Destination),
		Domain: x.Domain, DomainSource: x.DomainSource}
	for _, m := range x.Threats {
		p.Threats = append(p.Threats, &ThreatMatch{Feed: m.Feed, Type: m.Type, Indicator: m.Indicator, Field: m.Field,
			Atomic: m.Atomic, Description: m.Description, Confidence: m.Confidence, Id: m.ID})
	}
	if r := x.Rarity; r != nil {
		p.Rarity = &Rarity{FirstSeen: uint32(r.FirstSeen), PairCount: r.PairCount, ServerPortCount: r.ServerPortCount,
			Ja4Count: r.JA4Count, DomainCount: r.DomainCount}
	}
	return p
}

func endpointEnrichmentFrom(e *flow.EndpointEnrichment) *EndpointEnrichment {
	if *e == (flow.EndpointEnrichment{}) {
		return nil
	}
	p := &EndpointEnrichment{}
	if g := e.Geo; g != nil {
		p.Geo = &Geo{Name: g.Name, CityName: g.CityName, CountryIsoCode: g.CountryISOCode, CountryName: g.CountryName,
			RegionName: g.RegionName, ContinentCode: g.ContinentCode, Timezone: g.Timezone, HasLocation: g.HasLocation, Lat: g.Lat, Lon: g.Lon}
	}
	if a := e.AS; a != nil {
		p.As = &AS{Number: a.Number, Organization: a.Organization}
	}
	if a := e.Asset; a != nil {
		p.Asset = &Asset{Name: a.Name, Site: a.Site, Owner: a.Owner, Role: a.Role, Criticality: a.Criticality, Internal: a.Internal}
	}
	return p
}

// enrichmentTo converts the wire form back (nil when absent).
func enrichmentTo(p *Enrichment) *flow.Enrichment {
	if p == nil {
		return nil
	}
	x := &flow.Enrichment{Source: endpointEnrichmentTo(p.Source), Destination: endpointEnrichmentTo(p.Destination),
		Domain: p.Domain, DomainSource: p.DomainSource}
	for _, m := range p.Threats {
		if m == nil {
			continue
		}
		x.Threats = append(x.Threats, flow.ThreatMatch{Feed: m.Feed, Type: m.Type, Indicator: m.Indicator, Field: m.Field,
			Atomic: m.Atomic, Description: m.Description, Confidence: m.Confidence, ID: m.Id})
	}
	if r := p.Rarity; r != nil {
		x.Rarity = &flow.Rarity{FirstSeen: uint8(r.FirstSeen), PairCount: r.PairCount, ServerPortCount: r.ServerPortCount,
			JA4Count: r.Ja4Count, DomainCount: r.DomainCount}
	}
	return x
}

func endpointEnrichmentTo(p *EndpointEnrichment) flow.EndpointEnrichment {
	var e flow.EndpointEnrichment
	if p == nil {
		return e
	}
	if g := p.Geo; g != nil {
		e.Geo = &flow.Geo{Name: g.Name, CityName: g.CityName, CountryISOCode: g.CountryIsoCode, CountryName: g.CountryName,
			RegionName: g.RegionName, ContinentCode: g.ContinentCode, Timezone: g.Timezone, HasLocation: g.HasLocation, Lat: g.Lat, Lon: g.Lon}
	}
	if a := p.As; a != nil {
		e.AS = &flow.AS{Number: a.Number, Organization: a.Organization}
	}
	if a := p.Asset; a != nil {
		e.Asset = &flow.Asset{Name: a.Name, Site: a.Site, Owner: a.Owner, Role: a.Role, Criticality: a.Criticality, Internal: a.Internal}
	}
	return e
}
