package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/tlsconfig"
)

// certsDir runs `tapir certs` to make a CA and sensor certificates.
func certsDir(t *testing.T, tapir string, sensors ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	runBin(t, tapir, "certs", "init", "-dir", dir)
	for _, s := range sensors {
		runBin(t, tapir, "certs", "sensor", "-dir", dir, s)
	}
	return dir
}

// expiredSensorCert writes a sensor certificate for id, signed by the CA
// in dir, that expired an hour ago; it returns the cert and key paths.
func expiredSensorCert(t *testing.T, dir, id string) (string, string) {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	caKeyPEM, err := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := pem.Decode(caPEM)
	kb, _ := pem.Decode(caKeyPEM)
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: id, Organization: []string{"tapir"}},
		NotBefore:    now.Add(-48 * time.Hour),
		NotAfter:     now.Add(-time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{tlsconfig.IdentityURI(tlsconfig.KindSensor, id)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, keyPath := filepath.Join(dir, "expired.pem"), filepath.Join(dir, "expired-key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, keyPath
}

// TestCheckConfigTLSFiles runs `tapir-sensor check-config` on configs
// that stream to a collector with TLS files made by `tapir certs`: good
// files pass; a missing file, a certificate of another sensor, of another
// CA, an expired one, one that does not parse, or a key of another
// certificate each fail with exit 2 and an error saying which.
func TestCheckConfigTLSFiles(t *testing.T) {
	sensor, tapir := binaries(t)
	dir := certsDir(t, tapir, "tap-01", "tap-02")
	other := certsDir(t, tapir, "tap-01")
	expCert, expKey := expiredSensorCert(t, dir, "tap-01")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not a certificate")}), 0o644); err != nil {
		t.Fatal(err)
	}
	p := func(d, f string) string { return filepath.Join(d, f) }
	for _, tc := range []struct {
		name          string
		ca, cert, key string
		want          string // "" = ok
	}{
		{"good", p(dir, "ca.pem"), p(dir, "sensor-tap-01.pem"), p(dir, "sensor-tap-01-key.pem"), ""},
		{"missing ca", p(dir, "nope.pem"), p(dir, "sensor-tap-01.pem"), p(dir, "sensor-tap-01-key.pem"), "tls.ca: open " + p(dir, "nope.pem") + ": no such file"},
		{"missing cert", p(dir, "ca.pem"), p(dir, "nope.pem"), p(dir, "sensor-tap-01-key.pem"), "tls.cert: open " + p(dir, "nope.pem") + ": no such file"},
		{"missing key", p(dir, "ca.pem"), p(dir, "sensor-tap-01.pem"), p(dir, "nope.pem"), "tls.key " + p(dir, "nope.pem")},
		{"other sensor", p(dir, "ca.pem"), p(dir, "sensor-tap-02.pem"), p(dir, "sensor-tap-02-key.pem"), `names sensor "tap-02", not this sensor's id "tap-01"`},
		{"other ca", p(dir, "ca.pem"), p(other, "sensor-tap-01.pem"), p(other, "sensor-tap-01-key.pem"), "does not chain to the CA"},
		{"expired", p(dir, "ca.pem"), expCert, expKey, `certificate "tap-01" expired at`},
		{"garbage", p(dir, "ca.pem"), garbage, p(dir, "sensor-tap-01-key.pem"), "certificate 1 does not parse"},
		{"key of another cert", p(dir, "ca.pem"), p(dir, "sensor-tap-01.pem"), p(dir, "sensor-tap-02-key.pem"), "tls.key"},
		{"cert as ca", p(dir, "sensor-tap-01.pem"), p(dir, "sensor-tap-01.pem"), p(dir, "sensor-tap-01-key.pem"), `certificate "tap-01" is not a CA certificate`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "sensor.yaml")
			yaml := "sensor_id: tap-01\ncapture:\n  interfaces: [eth0]\noutput:\n  collector:\n    collectors: [127.0.0.1:4740]\n    tls:\n" +
				"      ca: " + tc.ca + "\n      cert: " + tc.cert + "\n      key: " + tc.key + "\n"
			if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(sensor, "check-config", "--config", cfg)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if code != 0 || !strings.Contains(stdout.String(), "configuration ok") {
					t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
				}
				return
			}
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, stderr.String(), tc.want)
			}
			t.Logf("%s", strings.TrimSpace(stderr.String()))
		})
	}
}
