package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tapir-sensor/tapir/internal/tlsconfig"
)

// ErrTLSFiles wraps every problem CheckFiles finds with the collector
// link's certificate files.
var ErrTLSFiles = errors.New("collector tls files")

// CheckFiles checks what Validate cannot see in the YAML alone, as of
// now: when the sensor streams to a collector over mutual TLS, that the
// CA, certificate and key files exist and parse, that the key belongs to
// the certificate, that the certificate chains to the CA, that the CA and
// the certificate are within their validity windows, and that the
// certificate names the sensor id the way the collector matches it (its
// first tapir://sensor/<id> URI SAN; see internal/tlsconfig). Call it
// after Validate.
func (c *Config) CheckFiles(now time.Time) error {
	o := c.Output.Collector
	if len(o.Collectors) == 0 || o.TLS.Insecure {
		return nil
	}
	return checkSensorTLS(o.TLS, c.Engine.SensorID, now)
}

// checkSensorTLS checks one sensor's TLS files (see CheckFiles).
func checkSensorTLS(tc tlsconfig.Config, sensorID string, now time.Time) error {
	roots, err := readCA(tc.CAFile, now)
	if err != nil {
		return err
	}
	chain, err := readChain(tc.CertFile)
	if err != nil {
		return err
	}
	if _, err := tls.LoadX509KeyPair(tc.CertFile, tc.KeyFile); err != nil {
		return fmt.Errorf("%w: output.collector.tls.key %s: %v", ErrTLSFiles, tc.KeyFile, err)
	}
	leaf := chain[0]
	if err := inWindow(leaf, now); err != nil {
		return fmt.Errorf("%w: output.collector.tls.cert %s: %v", ErrTLSFiles, tc.CertFile, err)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("%w: output.collector.tls.cert %s does not chain to the CA %s: %v", ErrTLSFiles, tc.CertFile, tc.CAFile, err)
	}
	name, err := tlsconfig.Identity(leaf, tlsconfig.KindSensor)
	if err != nil {
		return fmt.Errorf("%w: output.collector.tls.cert %s has no tapir://sensor/<id> identity (the collector would refuse it)", ErrTLSFiles, tc.CertFile)
	}
	if name != sensorID {
		return fmt.Errorf("%w: output.collector.tls.cert %s names sensor %q, not this sensor's id %q (the collector would refuse it)", ErrTLSFiles, tc.CertFile, name, sensorID)
	}
	return nil
}

// readCA reads the CA bundle: every certificate must parse, be a CA
// certificate and be valid now.
func readCA(path string, now time.Time) (*x509.CertPool, error) {
	certs, err := readCerts(path)
	if err != nil {
		return nil, fmt.Errorf("%w: output.collector.tls.ca: %v", ErrTLSFiles, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		if err := inWindow(c, now); err != nil {
			return nil, fmt.Errorf("%w: output.collector.tls.ca %s: %v", ErrTLSFiles, path, err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("%w: output.collector.tls.ca %s: certificate %q is not a CA certificate", ErrTLSFiles, path, c.Subject.CommonName)
		}
		pool.AddCert(c)
	}
	return pool, nil
}

// readChain reads the sensor's certificate chain (leaf first).
func readChain(path string) ([]*x509.Certificate, error) {
	certs, err := readCerts(path)
	if err != nil {
		return nil, fmt.Errorf("%w: output.collector.tls.cert: %v", ErrTLSFiles, err)
	}
	return certs, nil
}

// readCerts parses every CERTIFICATE block of a PEM file; at least one.
func readCerts(path string) ([]*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err // names the path
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d does not parse: %w", path, len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return out, nil
}

// inWindow says whether a certificate is valid at now.
func inWindow(c *x509.Certificate, now time.Time) error {
	switch {
	case now.After(c.NotAfter):
		return fmt.Errorf("certificate %q expired at %s", c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		return fmt.Errorf("certificate %q is not valid before %s", c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}
