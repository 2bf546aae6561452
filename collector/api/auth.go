package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"gopkg.in/yaml.v3"

	"github.com/tapir-sensor/tapir/internal/tlsconfig"
)

// Role is a permission granted to a subject.
type Role string

// Roles. RoleAdmin implies every other role.
const (
	RoleFlowsRead Role = "flows:read" // GET /api/v1/flows, /api/v1/sensors
	RolePcapRead  Role = "pcap:read"  // GET /api/v1/pcap
	RoleAdmin     Role = "admin"      // everything
)

func knownRole(r Role) bool { return r == RoleFlowsRead || r == RolePcapRead || r == RoleAdmin }

// Principal is an authenticated caller.
type Principal struct {
	Subject string   `json:"subject"`
	Method  string   `json:"method"` // "token" or "cert"
	Roles   []string `json:"roles"`
}

// Has reports whether the principal holds the role (admin holds all).
func (p *Principal) Has(r Role) bool {
	return slices.Contains(p.Roles, string(r)) || slices.Contains(p.Roles, string(RoleAdmin))
}

// Errors of authentication.
var (
	// ErrUnauthenticated: no credentials, or credentials not recognised.
	ErrUnauthenticated = errors.New("api: unauthenticated")
	// ErrTokensFile: the tokens file is malformed.
	ErrTokensFile = errors.New("api: bad tokens file")
)

// TokenEntry is one bearer token in the tokens file.
type TokenEntry struct {
	Subject string   `yaml:"subject"`
	Roles   []string `yaml:"roles"`
}

// tokenRec is a parsed entry with its decoded hash.
type tokenRec struct {
	hash [sha256.Size]byte
	TokenEntry
}

// Tokens is a set of bearer tokens known by their SHA-256 hashes. It is
// immutable and safe for concurrent use.
type Tokens struct{ recs []tokenRec }

// HashToken returns the lower-case hex SHA-256 of a token, the form the
// tokens file stores.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// ParseTokens parses a tokens file: a YAML mapping from the hex SHA-256
// of each token to its subject and roles:
//
//	"5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8":
//	  subject: alice
//	  roles: [flows:read, pcap:read]
//
// Unknown keys, unknown roles, malformed hashes and empty subjects are
// errors.
func ParseTokens(data []byte) (*Tokens, error) {
	var m map[string]TokenEntry
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %w", ErrTokensFile, err)
	}
	t := &Tokens{}
	for h, e := range m {
		b, err := hex.DecodeString(strings.ToLower(h))
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("%w: key %q is not a hex SHA-256", ErrTokensFile, h)
		}
		if e.Subject == "" {
			return nil, fmt.Errorf("%w: token %.8s... has no subject", ErrTokensFile, h)
		}
		for _, r := range e.Roles {
			if !knownRole(Role(r)) {
				return nil, fmt.Errorf("%w: token of %s: unknown role %q", ErrTokensFile, e.Subject, r)
			}
		}
		var rec tokenRec
		copy(rec.hash[:], b)
		rec.TokenEntry = e
		t.recs = append(t.recs, rec)
	}
	return t, nil
}

// LoadTokens reads and parses a tokens file.
func LoadTokens(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tokens file: %w", err)
	}
	return ParseTokens(data)
}

// Lookup returns the entry of a presented token. It hashes the token and
// compares the hash with every entry in constant time, visiting all
// entries whatever matches.
func (t *Tokens) Lookup(token string) (TokenEntry, bool) {
	if t == nil || token == "" {
		return TokenEntry{}, false
	}
	h := sha256.Sum256([]byte(token))
	found := -1
	for i := range t.recs {
		if subtle.ConstantTimeCompare(h[:], t.recs[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return TokenEntry{}, false
	}
	return t.recs[found].TokenEntry, true
}

// authenticator resolves a request to a principal.
// tokens is swapped whole by Server.ReloadTokens.
type authenticator struct {
	tokens    atomic.Pointer[Tokens]
	certRoles map[string][]string
}

// authenticate returns the principal of a request: its bearer token when
// an Authorization header is present (an invalid one is refused even if
// a certificate was also presented), else its verified client
// certificate.
func (a *authenticator) authenticate(r *http.Request) (*Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, fmt.Errorf("authorization scheme is not Bearer: %w", ErrUnauthenticated)
		}
		e, ok := a.tokens.Load().Lookup(strings.TrimSpace(tok))
		if !ok {
			return nil, fmt.Errorf("unknown token: %w", ErrUnauthenticated)
		}
		return &Principal{Subject: e.Subject, Method: "token", Roles: e.Roles}, nil
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		name, _, err := tlsconfig.User(r.TLS)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w: %w", err, ErrUnauthenticated)
		}
		return &Principal{Subject: name, Method: "cert", Roles: a.certRoles[name]}, nil
	}
	return nil, fmt.Errorf("no credentials: %w", ErrUnauthenticated)
}
