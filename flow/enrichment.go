package flow

// Enrichment is the context the collector's enrichers add to a flow
// record (GeoIP/ASN, assets, passive DNS, threat intelligence, rarity).
// nil on a record that was not enriched. Geo, AS and Asset values may be
// shared between records (enrichers hand out pointers to immutable
// values): never modify them in place.
type Enrichment struct {
	Source      EndpointEnrichment
	Destination EndpointEnrichment
	// Domain is destination.domain: the name the client most likely
	// resolved for the server (passive DNS), else the TLS SNI or HTTP
	// host, else a PTR name. DomainSource says which.
	Domain       string
	DomainSource string // "dns", "tls.sni", "http.host", "ptr"
	// Threats are the threat intelligence indicators the flow matched.
	Threats []ThreatMatch
	// Rarity says what the fleet sees for the first time in this flow.
	Rarity *Rarity
}

// EndpointEnrichment is the context of one end of a flow.
type EndpointEnrichment struct {
	Geo   *Geo
	AS    *AS
	Asset *Asset
}

// Geo is ECS *.geo.
type Geo struct {
	Name           string // geo.name: the site of an internal address
	CityName       string
	CountryISOCode string
	CountryName    string
	RegionName     string
	ContinentCode  string
	Timezone       string
	HasLocation    bool
	Lat, Lon       float64
}

// AS is ECS *.as (autonomous system).
type AS struct {
	Number       uint32
	Organization string
}

// Asset is an entry of the asset inventory (tapir.<side>.asset.*).
type Asset struct {
	Name        string
	Site        string
	Owner       string
	Role        string
	Criticality string
	Internal    bool // an internal address: gets an internal location, not GeoIP
}

// ThreatMatch is one indicator a flow matched.
type ThreatMatch struct {
	Feed        string // threat.feed.name
	Type        string // threat.indicator.type: ipv4-addr, ipv6-addr, domain-name, ja4, ja3, sni
	Indicator   string // the feed's value (an address, CIDR, domain, fingerprint)
	Field       string // the flow field that matched (destination.ip, destination.domain, tls.client.ja4, ...)
	Atomic      string // the flow's value that matched
	Description string
	Confidence  string
	ID          string // the indicator's id in its feed (STIX id), if any
}

// Rarity flags (Rarity.FirstSeen).
const (
	RarePair       uint8 = 1 << iota // client-server pair never seen before
	RareServerPort                   // server port never seen on this server
	RareJA4                          // JA4 never seen on this client
	RareDomain                       // domain never seen before
)

// Rarity says what in a flow the fleet saw for the first time, and how
// often (estimated) each thing was seen in the current window.
type Rarity struct {
	FirstSeen       uint8 // Rare* flags
	PairCount       uint32
	ServerPortCount uint32
	JA4Count        uint32
	DomainCount     uint32
}

// ECSGeo is ECS *.geo.
type ECSGeo struct {
	Name           string       `json:"name,omitempty"`
	CityName       string       `json:"city_name,omitempty"`
	CountryISOCode string       `json:"country_iso_code,omitempty"`
	CountryName    string       `json:"country_name,omitempty"`
	RegionName     string       `json:"region_name,omitempty"`
	ContinentCode  string       `json:"continent_code,omitempty"`
	Timezone       string       `json:"timezone,omitempty"`
	Location       *ECSLocation `json:"location,omitempty"`
}

// ECSLocation is a geo_point.
type ECSLocation struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// ECSAS is ECS *.as.
type ECSAS struct {
	Number       uint32 `json:"number"`
	Organization struct {
		Name string `json:"name,omitempty"`
	} `json:"organization"`
}

// ECSAsset is tapir.source.asset / tapir.destination.asset.
type ECSAsset struct {
	Name        string `json:"name,omitempty"`
	Site        string `json:"site,omitempty"`
	Owner       string `json:"owner,omitempty"`
	Role        string `json:"role,omitempty"`
	Criticality string `json:"criticality,omitempty"`
	Internal    bool   `json:"internal"`
}

// ECSRarity is tapir.rarity.
type ECSRarity struct {
	FirstSeen       []string `json:"first_seen,omitempty"`
	PairCount       uint32   `json:"pair_count"`
	ServerPortCount uint32   `json:"server_port_count"`
	JA4Count        uint32   `json:"ja4_count,omitempty"`
	DomainCount     uint32   `json:"domain_count,omitempty"`
}

// ECSThreat is ECS threat.*: the first match as threat.indicator and
// threat.feed, every match in threat.enrichments.
type ECSThreat struct {
	Feed struct {
		Name string `json:"name"`
	} `json:"feed"`
	Indicator   ECSIndicator          `json:"indicator"`
	Enrichments []ECSThreatEnrichment `json:"enrichments"`
}

// ECSIndicator is ECS threat.indicator.
type ECSIndicator struct {
	Type string `json:"type"`
	Name string `json:"name"`
	IP   string `json:"ip,omitempty"`
	URL  *struct {
		Domain string `json:"domain"`
	} `json:"url,omitempty"`
	Description string `json:"description,omitempty"`
	Confidence  string `json:"confidence,omitempty"`
	Provider    string `json:"provider,omitempty"`
	ID          string `json:"id,omitempty"` // tapir extension: the STIX id
}

// ECSThreatEnrichment is one element of ECS threat.enrichments.
type ECSThreatEnrichment struct {
	Indicator ECSIndicator `json:"indicator"`
	Matched   struct {
		Atomic string `json:"atomic"`
		Field  string `json:"field"`
		Type   string `json:"type"`
	} `json:"matched"`
	Feed struct {
		Name string `json:"name"`
	} `json:"feed"`
}

func (g *Geo) ecs() *ECSGeo {
	if g == nil {
		return nil
	}
	o := &ECSGeo{Name: g.Name, CityName: g.CityName, CountryISOCode: g.CountryISOCode, CountryName: g.CountryName,
		RegionName: g.RegionName, ContinentCode: g.ContinentCode, Timezone: g.Timezone}
	if g.HasLocation {
		o.Location = &ECSLocation{Lat: g.Lat, Lon: g.Lon}
	}
	return o
}

func (a *AS) ecs() *ECSAS {
	if a == nil {
		return nil
	}
	o := &ECSAS{Number: a.Number}
	o.Organization.Name = a.Organization
	return o
}

func (a *Asset) ecs() *ECSAsset {
	if a == nil {
		return nil
	}
	return &ECSAsset{Name: a.Name, Site: a.Site, Owner: a.Owner, Role: a.Role, Criticality: a.Criticality, Internal: a.Internal}
}

// RarityNames lists the Rare* flags' names in bit order.
var RarityNames = [...]string{"pair", "server_port", "ja4", "domain"}

func (m *ThreatMatch) indicator() ECSIndicator {
	in := ECSIndicator{Type: m.Type, Name: m.Indicator, Description: m.Description, Confidence: m.Confidence, Provider: m.Feed, ID: m.ID}
	switch m.Type {
	case "ipv4-addr", "ipv6-addr":
		in.IP = m.Atomic
	case "domain-name":
		in.URL = &struct {
			Domain string `json:"domain"`
		}{Domain: m.Indicator}
	}
	return in
}

// ThreatECS renders matches as ECS threat.* (nil when there are none).
func ThreatECS(ms []ThreatMatch) *ECSThreat {
	if len(ms) == 0 {
		return nil
	}
	t := &ECSThreat{Indicator: ms[0].indicator()}
	t.Feed.Name = ms[0].Feed
	for i := range ms {
		var en ECSThreatEnrichment
		en.Indicator = ms[i].indicator()
		en.Matched.Atomic, en.Matched.Field, en.Matched.Type = ms[i].Atomic, ms[i].Field, "indicator_match_rule"
		en.Feed.Name = ms[i].Feed
		t.Enrichments = append(t.Enrichments, en)
	}
	return t
}

// addECS adds the enrichment's ECS fields (source.geo, source.as,
// destination.domain, threat.*, tapir.<side>.asset, tapir.rarity) to e.
func (x *Enrichment) addECS(e *ECS) {
	e.Source.Geo, e.Source.AS = x.Source.Geo.ecs(), x.Source.AS.ecs()
	e.Destination.Geo, e.Destination.AS = x.Destination.Geo.ecs(), x.Destination.AS.ecs()
	e.Tapir.Source.Asset, e.Tapir.Destination.Asset = x.Source.Asset.ecs(), x.Destination.Asset.ecs()
	if x.Domain != "" {
		e.Destination.Domain = x.Domain
		e.Tapir.DomainSource = x.DomainSource
	}
	if t := ThreatECS(x.Threats); t != nil {
		if e.Extra == nil {
			e.Extra = map[string]any{}
		}
		e.Extra["threat"] = t
	}
	if r := x.Rarity; r != nil {
		o := &ECSRarity{PairCount: r.PairCount, ServerPortCount: r.ServerPortCount, JA4Count: r.JA4Count, DomainCount: r.DomainCount}
		for i, n := range RarityNames {
			if r.FirstSeen&(1<<i) != 0 {
				o.FirstSeen = append(o.FirstSeen, n)
			}
		}
		e.Tapir.Rarity = o
	}
}
