package flow

// AppMeta is application metadata the sensor extracts once per flow (DNS,
// TLS, HTTP, SSH), with bounded work per packet. nil on a record when
// nothing was extracted; each part is nil when its protocol was not seen.
type AppMeta struct {
	DNS  *DNSMeta
	TLS  *TLSMeta
	HTTP *HTTPMeta
	SSH  *SSHMeta
}

// DNSMeta is the first DNS transaction of a flow (UDP or TCP).
type DNSMeta struct {
	ID           uint16
	QueryName    string // as in the question, without the trailing dot
	QueryType    uint16 // RR type (1 A, 28 AAAA, ...)
	HasResponse  bool
	ResponseCode uint8 // RCODE (0 NOERROR, 3 NXDOMAIN, ...)
	Answers      []DNSAnswer
}

// DNSAnswer is one resource record of the answer section.
type DNSAnswer struct {
	Name string
	Type uint16 // 1 A, 28 AAAA, 5 CNAME, ...
	TTL  uint32
	Data string // address text for A/AAAA, target name for CNAME/PTR/NS, else empty
}

// TLSMeta is what the handshake shows in clear.
type TLSMeta struct {
	ServerName    string   // ClientHello SNI
	ALPN          []string // ClientHello ALPN offers
	ClientVersion uint16   // highest version the client offers (supported_versions, else legacy)
	JA4           string   // JA4 client fingerprint
	JA3           string   // JA3 client fingerprint (MD5 hex)
	ServerVersion uint16   // version the server chose (supported_versions, else legacy)
	Cipher        uint16   // cipher suite the server chose
	QUIC          bool     // seen in a QUIC Initial packet
}

// HTTPMeta is the first HTTP/1.x request and response of a flow.
type HTTPMeta struct {
	Method      string
	Host        string
	URI         string
	UserAgent   string
	StatusCode  int
	ContentType string
}

// SSHMeta holds the SSH identification strings of both sides.
type SSHMeta struct {
	ClientVersion string
	ServerVersion string
}

// addECS adds the metadata's ECS fields (dns.*, tls.*, http.*, url.*,
// user_agent.*) to e. Implemented by the metadata extractors' issue.
func (a *AppMeta) addECS(e *ECS) {}
