package flow

import (
	"crypto/tls"
	"net"
	"strings"
)

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
	NextProtocol  string   // ALPN protocol the server chose (ServerHello, TLS 1.2 and below; TLS 1.3 encrypts it)
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

// ECSDNS is ECS dns.*.
type ECSDNS struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"` // "query" when only the query was seen, else "answer"
	Question     ECSDNSQuestion `json:"question"`
	ResponseCode string         `json:"response_code,omitempty"`
	Answers      []ECSDNSAnswer `json:"answers,omitempty"`
	ResolvedIP   []string       `json:"resolved_ip,omitempty"`
}

// ECSDNSQuestion is ECS dns.question.*.
type ECSDNSQuestion struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// ECSDNSAnswer is one entry of ECS dns.answers.
type ECSDNSAnswer struct {
	Name string `json:"name"`
	Type string `json:"type"`
	TTL  uint32 `json:"ttl"`
	Data string `json:"data,omitempty"`
}

// ECSTLS is ECS tls.*. tls.client.ja4 and tls.client.alpn are tapir
// extensions (ECS has no field for them).
type ECSTLS struct {
	Version         string       `json:"version,omitempty"`
	VersionProtocol string       `json:"version_protocol,omitempty"`
	Cipher          string       `json:"cipher,omitempty"`
	NextProtocol    string       `json:"next_protocol,omitempty"`
	Client          ECSTLSClient `json:"client"`
}

// ECSTLSClient is ECS tls.client.*.
type ECSTLSClient struct {
	ServerName string   `json:"server_name,omitempty"`
	JA3        string   `json:"ja3,omitempty"`
	JA4        string   `json:"ja4,omitempty"`  // tapir extension
	ALPN       []string `json:"alpn,omitempty"` // tapir extension: protocols offered
}

// ECSHTTP is ECS http.*.
type ECSHTTP struct {
	Request  *ECSHTTPRequest  `json:"request,omitempty"`
	Response *ECSHTTPResponse `json:"response,omitempty"`
}

// ECSHTTPRequest is ECS http.request.*.
type ECSHTTPRequest struct {
	Method string `json:"method"`
}

// ECSHTTPResponse is ECS http.response.*.
type ECSHTTPResponse struct {
	StatusCode int    `json:"status_code"`
	MimeType   string `json:"mime_type,omitempty"`
}

// ECSURL is ECS url.*.
type ECSURL struct {
	Original string `json:"original,omitempty"`
	Domain   string `json:"domain,omitempty"`
	Path     string `json:"path,omitempty"`
	Query    string `json:"query,omitempty"`
}

// ECSUserAgent is ECS user_agent.*.
type ECSUserAgent struct {
	Original string `json:"original"`
}

// ECSTapirSSH is tapir.ssh.* (ECS has no SSH fields).
type ECSTapirSSH struct {
	Client string `json:"client,omitempty"`
	Server string `json:"server,omitempty"`
}

var dnsTypeNames = map[uint16]string{1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX",
	16: "TXT", 28: "AAAA", 33: "SRV", 35: "NAPTR", 39: "DNAME", 41: "OPT", 43: "DS", 46: "RRSIG", 47: "NSEC",
	48: "DNSKEY", 50: "NSEC3", 52: "TLSA", 64: "SVCB", 65: "HTTPS", 99: "SPF", 252: "AXFR", 255: "ANY", 257: "CAA"}

var dnsRcodeNames = [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE", "DSOTYPENI"}

// DNSTypeName returns the mnemonic of an RR type ("AAAA"), or "TYPE<n>"
// (RFC 3597) for types without one here.
func DNSTypeName(t uint16) string {
	if n, ok := dnsTypeNames[t]; ok {
		return n
	}
	return "TYPE" + itoa(uint64(t))
}

// DNSRcodeName returns the mnemonic of a response code ("NXDOMAIN").
func DNSRcodeName(c uint8) string {
	if int(c) < len(dnsRcodeNames) {
		return dnsRcodeNames[c]
	}
	return "RCODE" + itoa(uint64(c))
}

// TLSVersionName returns ECS tls.version_protocol and tls.version for a
// protocol version number: ("tls", "1.3"), ("ssl", "3.0"); empty when
// unknown.
func TLSVersionName(v uint16) (protocol, version string) {
	switch v {
	case 0x0304:
		return "tls", "1.3"
	case 0x0303:
		return "tls", "1.2"
	case 0x0302:
		return "tls", "1.1"
	case 0x0301:
		return "tls", "1.0"
	case 0x0300:
		return "ssl", "3.0"
	case 0x0002:
		return "ssl", "2.0"
	}
	return "", ""
}

// addECS adds the metadata's ECS fields (dns.*, tls.*, http.*, url.*,
// user_agent.original, tapir.ssh) to e.
func (a *AppMeta) addECS(e *ECS) {
	if d := a.DNS; d != nil {
		x := &ECSDNS{ID: itoa(uint64(d.ID)), Type: "query",
			Question: ECSDNSQuestion{Name: d.QueryName, Type: DNSTypeName(d.QueryType)}}
		if d.HasResponse {
			x.Type = "answer"
			x.ResponseCode = DNSRcodeName(d.ResponseCode)
			for _, an := range d.Answers {
				x.Answers = append(x.Answers, ECSDNSAnswer{Name: an.Name, Type: DNSTypeName(an.Type), TTL: an.TTL, Data: an.Data})
				if (an.Type == 1 || an.Type == 28) && an.Data != "" {
					x.ResolvedIP = append(x.ResolvedIP, an.Data)
				}
			}
		}
		e.DNS = x
	}
	if t := a.TLS; t != nil {
		x := &ECSTLS{NextProtocol: t.NextProtocol, Client: ECSTLSClient{ServerName: t.ServerName, JA3: t.JA3, JA4: t.JA4, ALPN: t.ALPN}}
		if t.Cipher != 0 {
			x.VersionProtocol, x.Version = TLSVersionName(t.ServerVersion)
			x.Cipher = tls.CipherSuiteName(t.Cipher)
		}
		e.TLS = x
	}
	if h := a.HTTP; h != nil {
		x := &ECSHTTP{}
		if h.Method != "" {
			x.Request = &ECSHTTPRequest{Method: h.Method}
			u := &ECSURL{Original: h.URI, Domain: h.Host}
			if host, _, err := net.SplitHostPort(h.Host); err == nil {
				u.Domain = host
			}
			path := h.URI
			if i := strings.Index(path, "://"); i >= 0 { // absolute form (proxies)
				if j := strings.IndexByte(path[i+3:], '/'); j >= 0 {
					path = path[i+3+j:]
				} else {
					path = "/"
				}
			}
			if i := strings.IndexByte(path, '?'); i >= 0 {
				path, u.Query = path[:i], path[i+1:]
			}
			u.Path = path
			e.URL = u
			if h.UserAgent != "" {
				e.UserAgent = &ECSUserAgent{Original: h.UserAgent}
			}
		}
		if h.StatusCode != 0 {
			x.Response = &ECSHTTPResponse{StatusCode: h.StatusCode, MimeType: h.ContentType}
		}
		e.HTTP = x
	}
	if s := a.SSH; s != nil {
		e.Tapir.SSH = &ECSTapirSSH{Client: s.ClientVersion, Server: s.ServerVersion}
	}
}
