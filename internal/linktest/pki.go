package linktest

import (
	"testing"

	"github.com/tapir-sensor/tapir/internal/tlsconfig"
)

// PKI is a throwaway CA directory with a server certificate for
// localhost/127.0.0.1 and sensor certificates.
type PKI struct{ Dir string }

// NewPKI creates a CA and a server certificate in a test temp dir, and
// sensor certificates for the ids given.
func NewPKI(t testing.TB, sensors ...string) *PKI {
	t.Helper()
	dir := t.TempDir()
	if err := tlsconfig.GenerateCA(dir); err != nil {
		t.Fatal(err)
	}
	if err := tlsconfig.IssueServer(dir, "localhost", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	for _, s := range sensors {
		if err := tlsconfig.IssueSensor(dir, s); err != nil {
			t.Fatal(err)
		}
	}
	return &PKI{Dir: dir}
}

// Server returns the collector's TLS configuration.
func (p *PKI) Server() tlsconfig.Config {
	c, k := tlsconfig.Paths(p.Dir, "server")
	return tlsconfig.Config{CAFile: tlsconfig.CAPath(p.Dir), CertFile: c, KeyFile: k}
}

// Sensor returns a sensor's TLS configuration.
func (p *PKI) Sensor(id string) tlsconfig.Config {
	c, k := tlsconfig.Paths(p.Dir, "sensor-"+id)
	return tlsconfig.Config{CAFile: tlsconfig.CAPath(p.Dir), CertFile: c, KeyFile: k, ServerName: "localhost"}
}
