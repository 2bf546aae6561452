package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/collector/config"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

func TestExampleFileValidates(t *testing.T) {
	c, err := config.Load(filepath.Join(testenv.RepoRoot(t), "deploy", "collector.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Retention.MaxAge.Hours() != 168 || c.API.CertRoles["alice"][0] != "admin" {
		t.Fatalf("example not read: %+v", c)
	}
}

func TestDefaultsNeedTLSChoice(t *testing.T) {
	c := config.DefaultConfig()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "insecure") {
		t.Fatalf("defaults without TLS files: %v", err)
	}
	c.Ingest.TLS.Insecure = true
	c.API.TLS.Insecure = true
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrorsSayWhat(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown key":                    {"stor: {}\n", "field stor not found"},
		"unknown backend":                {"store: {backend: cassandra}\ningest: {tls: {insecure: true}}\napi: {tls: {insecure: true}}\n", "cassandra"},
		"no audit":                       {"ingest: {tls: {insecure: true}}\napi: {tls: {insecure: true}, audit_file: \"\"}\n", "audit_file"},
		"bad role":                       {"ingest: {tls: {insecure: true}}\napi: {tls: {insecure: true}, cert_roles: {bob: [root]}}\n", "root"},
		"search backend":                 {"ingest: {tls: {insecure: true}}\napi: {tls: {insecure: true}, search: {backend: elastic}}\n", "elastic"},
		"opensearch search without urls": {"ingest: {tls: {insecure: true}}\napi: {tls: {insecure: true}, search: {backend: opensearch}}\n", "opensearch.urls"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		if err := os.WriteFile(p, []byte(tc.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(p)
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", name, err, tc.want)
		}
	}
}
