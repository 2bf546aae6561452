package flow

// AppMeta is application metadata the sensor extracts once per flow (DNS,
// TLS, HTTP, SSH). Filled by the sensor's metadata extractors; nil on a
// record when nothing was extracted.
type AppMeta struct{}

// addECS adds the metadata's ECS fields (dns.*, tls.*, http.*, url.*,
// user_agent.*) to e.
func (a *AppMeta) addECS(e *ECS) {}
