// Package tlsconfig builds the mutual-TLS configurations of tapir's
// sensor-to-collector link (and of the collector's API clients), and
// generates a small development CA with certificates for servers, sensors
// and users.
//
// # Identities
//
// A peer's identity is a URI SAN in its certificate, never its CommonName:
//
//	tapir://sensor/<sensor-id>   a sensor; the collector checks that the
//	                             sensor_id of its Hello equals <sensor-id>
//	tapir://user/<name>          an API user; the certificate's first
//	                             OrganizationalUnit is the user's role
//
// The CommonName carries the same name for humans reading the certificate.
// Using the SAN means a certificate issued for one kind of peer (a user)
// can never pass as another (a sensor), even with the same name.
//
// Both sides use TLS 1.3 only. Plaintext exists only through an explicit
// Insecure option and is meant for tests and lab setups.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Sentinel errors.
var (
	// ErrNoIdentity: the certificate has no tapir:// URI SAN of the kind asked.
	ErrNoIdentity = errors.New("tlsconfig: certificate carries no tapir identity")
	// ErrInsecureMix: Insecure was set together with certificate files.
	ErrInsecureMix = errors.New("tlsconfig: insecure set together with certificate files")
	// ErrMissingFile: a required certificate, key or CA file is not configured.
	ErrMissingFile = errors.New("tlsconfig: missing file")
)

// Config names the PEM files of one side of a mutual-TLS link.
type Config struct {
	// CAFile is the CA bundle that verifies the peer.
	CAFile string `yaml:"ca"`
	// CertFile and KeyFile are this side's certificate chain and key.
	CertFile string `yaml:"cert"`
	KeyFile  string `yaml:"key"`
	// ServerName overrides the name a client verifies in the server's
	// certificate (default: the host of the address dialled).
	ServerName string `yaml:"server_name"`
	// Insecure disables TLS entirely (plaintext, no identity check). It
	// must be set explicitly and excludes the file options.
	Insecure bool `yaml:"insecure"`
}

// Validate checks that the configuration is either complete mutual TLS or
// explicitly insecure.
func (c Config) Validate() error {
	if c.Insecure {
		if c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" {
			return ErrInsecureMix
		}
		return nil
	}
	for name, v := range map[string]string{"ca": c.CAFile, "cert": c.CertFile, "key": c.KeyFile} {
		if v == "" {
			return fmt.Errorf("%w: %s (set it, or set insecure: true for plaintext)", ErrMissingFile, name)
		}
	}
	return nil
}

func (c Config) load() (tls.Certificate, *x509.CertPool, error) {
	if err := c.Validate(); err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("load key pair: %w", err)
	}
	pool, err := CAPool(c.CAFile)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return cert, pool, nil
}

// CAPool reads the PEM CA certificates of the file at path into a new
// pool; the file must hold at least one.
func CAPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("read ca %s: no PEM certificate", path)
	}
	return pool, nil
}

// Server returns the server side: TLS 1.3, client certificates required
// and verified against CAFile. It returns nil, nil when Insecure is set.
func Server(c Config) (*tls.Config, error) {
	if c.Insecure {
		return nil, c.Validate()
	}
	cert, pool, err := c.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}, nil
}

// Client returns the client side: TLS 1.3, the server verified against
// CAFile, this side's certificate presented. It returns nil, nil when
// Insecure is set.
func Client(c Config) (*tls.Config, error) {
	if c.Insecure {
		return nil, c.Validate()
	}
	cert, pool, err := c.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   c.ServerName,
	}, nil
}

// Identity kinds in tapir:// URI SANs.
const (
	KindSensor = "sensor"
	KindUser   = "user"
)

// IdentityURI returns the URI SAN naming a peer of the kind.
func IdentityURI(kind, name string) *url.URL {
	return &url.URL{Scheme: "tapir", Host: kind, Path: "/" + name}
}

// Identity returns the name of the kind ("sensor" or "user") in the
// certificate's tapir:// URI SAN, or ErrNoIdentity.
func Identity(cert *x509.Certificate, kind string) (string, error) {
	if cert == nil {
		return "", ErrNoIdentity
	}
	for _, u := range cert.URIs {
		if u.Scheme != "tapir" || u.Host != kind {
			continue
		}
		name := strings.TrimPrefix(u.Path, "/")
		if name == "" || strings.Contains(name, "/") {
			continue
		}
		return name, nil
	}
	return "", ErrNoIdentity
}

// SensorID returns the sensor identity of a verified TLS connection's
// peer (its leaf certificate).
func SensorID(state *tls.ConnectionState) (string, error) {
	if state == nil || len(state.PeerCertificates) == 0 {
		return "", ErrNoIdentity
	}
	return Identity(state.PeerCertificates[0], KindSensor)
}

// User returns the user name and role of a verified TLS connection's peer.
func User(state *tls.ConnectionState) (name, role string, err error) {
	if state == nil || len(state.PeerCertificates) == 0 {
		return "", "", ErrNoIdentity
	}
	leaf := state.PeerCertificates[0]
	name, err = Identity(leaf, KindUser)
	if err != nil {
		return "", "", err
	}
	if len(leaf.Subject.OrganizationalUnit) > 0 {
		role = leaf.Subject.OrganizationalUnit[0]
	}
	return name, role, nil
}
