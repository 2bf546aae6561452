package flow

// Enrichment is the context the collector's enrichers add to a flow
// record (GeoIP/ASN, assets, passive DNS, threat intelligence, rarity).
// nil on a record that was not enriched.
type Enrichment struct{}

// addECS adds the enrichment's ECS fields (source.geo, source.as,
// threat.*, ...) to e.
func (x *Enrichment) addECS(e *ECS) {}
