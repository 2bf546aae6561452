package api

import (
	"errors"
	"fmt"
	"time"

	"github.com/tapir-sensor/tapir/collector/query"
	"github.com/tapir-sensor/tapir/internal/tlsconfig"
)

// Config is the api section of the collector's configuration.
type Config struct {
	// Listen is the address the API listens on (host:port).
	Listen string `yaml:"listen"`
	// TLS holds the server certificate, its key and the CA that verifies
	// client certificates. TLS.Insecure serves plaintext (local
	// development only).
	TLS tlsconfig.Config `yaml:"tls"`
	// RequireClientCert refuses TLS handshakes without a client
	// certificate; otherwise a certificate is verified when offered and
	// bearer tokens are accepted too.
	RequireClientCert bool `yaml:"require_client_cert"`
	// TokensFile is the YAML file of bearer tokens (see LoadTokens).
	// Empty: no bearer tokens are accepted.
	TokensFile string `yaml:"tokens_file"`
	// CertRoles maps the user name of a client certificate (its
	// tapir://user/<name> identity) to its roles.
	CertRoles map[string][]string `yaml:"cert_roles"`
	// AuditFile is the JSON-lines file every retrieval is appended to.
	// Required: retrieval without an audit trail is not offered.
	AuditFile string `yaml:"audit_file"`
	// AuditSync fsyncs the audit file after every entry (otherwise it is
	// only written through to the kernel).
	AuditSync bool `yaml:"audit_sync"`
	// Audit bounds the audit log and says what happens when it cannot be
	// written.
	Audit AuditConfig `yaml:"audit"`
	// RequestTimeout bounds one request, streaming included.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxConcurrent bounds retrievals (pcap and flows) served at once;
	// more are answered 503.
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxPackets and MaxBytes cap one pcap answer (bytes are captured
	// packet bytes); a request may lower them with max_packets and
	// max_bytes.
	MaxPackets int64 `yaml:"max_packets"`
	MaxBytes   int64 `yaml:"max_bytes"`
	// MaxFlows caps the flows one pcap query merges.
	MaxFlows int `yaml:"max_flows"`
	// FlowsLimit is the default and FlowsMaxLimit the largest number of
	// records one flows request returns.
	FlowsLimit    int `yaml:"flows_limit"`
	FlowsMaxLimit int `yaml:"flows_max_limit"`
	// NotFlushedRetry is the Retry-After sent when a flow is known but
	// none of its packets is stored yet.
	NotFlushedRetry time.Duration `yaml:"not_flushed_retry"`
	// Query bounds query cost (length, nodes, default and maximum window).
	Query query.Config `yaml:"query"`
	// Inspect bounds the flow inspection answers (packets, Follow Stream).
	Inspect InspectConfig `yaml:"inspect"`
}

// AuditConfig bounds the audit log.
type AuditConfig struct {
	// FailOpen serves retrievals even while the audit log cannot be
	// written (the entries then only reach the process log, without
	// their parameters). Default false: pcap and flows requests are
	// answered 503 "audit_unavailable" instead.
	FailOpen bool `yaml:"fail_open"`
	// MaxBytes rotates the audit file when an entry would make it
	// larger: audit.jsonl becomes audit.jsonl.1, .1 becomes .2, ...
	MaxBytes int64 `yaml:"max_bytes"`
	// Keep is how many rotated files are kept (the oldest is deleted).
	Keep int `yaml:"keep"`
	// MaxParamBytes cuts the flow and query parameters recorded in an
	// entry; a cut one is followed by its length and SHA-256 prefix.
	MaxParamBytes int `yaml:"max_param_bytes"`
	// DeniedRate and DeniedBurst are the token bucket, per source IP, of
	// denied requests (401, 403) that are audited; past it a source is
	// answered 429 and its denials are only counted
	// (tapir_api_denied_rate_limited_total, and suppressed_denials in
	// its next audited entry).
	DeniedRate  float64 `yaml:"denied_rate"`
	DeniedBurst int     `yaml:"denied_burst"`
	// MinFreeBytes: retrievals are refused (unless FailOpen) while the
	// audit file's file system has less free space than this.
	MinFreeBytes int64 `yaml:"min_free_bytes"`
}

// DefaultAuditConfig returns the audit bounds: fail closed, 64 MiB files,
// 8 rotated ones kept (576 MiB at most), parameters cut at 256 bytes,
// 1 denied request per second per source with bursts of 20, 1 MiB free.
func DefaultAuditConfig() AuditConfig {
	return AuditConfig{MaxBytes: 64 << 20, Keep: 8, MaxParamBytes: 256, DeniedRate: 1, DeniedBurst: 20, MinFreeBytes: 1 << 20}
}

// DefaultConfig returns the defaults: TLS on :8443 (files to be
// configured), 5 minute requests, 8 concurrent retrievals, 1 M packets or
// 1 GiB per answer, 1000 flows per query, 1000 (max 100000) records per
// flows request.
func DefaultConfig() Config {
	return Config{
		Listen:          ":8443",
		AuditFile:       "/var/lib/tapir/audit.jsonl",
		AuditSync:       true,
		Audit:           DefaultAuditConfig(),
		RequestTimeout:  5 * time.Minute,
		MaxConcurrent:   8,
		MaxPackets:      1 << 20,
		MaxBytes:        1 << 30,
		MaxFlows:        1000,
		FlowsLimit:      1000,
		FlowsMaxLimit:   100000,
		NotFlushedRetry: 30 * time.Second,
		Query:           query.DefaultConfig(),
		Inspect:         DefaultInspectConfig(),
	}
}

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("api: invalid configuration")

// Validate checks the configuration. TLS files are checked by Start,
// which loads them.
func (c Config) Validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: "+f, append([]any{ErrConfig}, a...)...) }
	switch {
	case c.Listen == "":
		return bad("listen is empty")
	case c.AuditFile == "":
		return bad("audit_file is required")
	case c.Audit.MaxBytes < 4096 || c.Audit.Keep < 1:
		return bad("audit.max_bytes must be at least 4096 and audit.keep at least 1")
	case c.Audit.MaxParamBytes < 16 || c.Audit.MaxParamBytes > 64<<10:
		return bad("audit.max_param_bytes must be within 16..65536")
	case c.Audit.DeniedRate <= 0 || c.Audit.DeniedBurst < 1:
		return bad("audit.denied_rate must be positive and audit.denied_burst at least 1")
	case c.Audit.MinFreeBytes < 0:
		return bad("audit.min_free_bytes must not be negative")
	case c.RequestTimeout <= 0:
		return bad("request_timeout must be positive")
	case c.MaxConcurrent <= 0:
		return bad("max_concurrent must be positive")
	case c.MaxPackets <= 0 || c.MaxBytes <= 0 || c.MaxFlows <= 0:
		return bad("max_packets, max_bytes and max_flows must be positive")
	case c.FlowsLimit <= 0 || c.FlowsMaxLimit < c.FlowsLimit:
		return bad("flows_limit must be positive and at most flows_max_limit")
	case c.NotFlushedRetry < 0:
		return bad("not_flushed_retry must not be negative")
	case c.RequireClientCert && c.TLS.Insecure:
		return bad("require_client_cert needs TLS")
	}
	for name, roles := range c.CertRoles {
		for _, r := range roles {
			if !knownRole(Role(r)) {
				return bad("cert_roles[%s]: unknown role %q", name, r)
			}
		}
	}
	if err := c.Query.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return c.Inspect.Validate()
}
