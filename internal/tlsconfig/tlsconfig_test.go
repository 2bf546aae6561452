package tlsconfig

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pki is a CA directory with a server, one sensor and one user.
func pki(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := GenerateCA(dir); err != nil {
		t.Fatal(err)
	}
	if err := IssueServer(dir, "localhost", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if err := IssueSensor(dir, "sensor-1"); err != nil {
		t.Fatal(err)
	}
	if err := IssueClient(dir, "alice", "investigator"); err != nil {
		t.Fatal(err)
	}
	return dir
}

func cfg(dir, name string) Config {
	c, k := Paths(dir, name)
	return Config{CAFile: CAPath(dir), CertFile: c, KeyFile: k}
}

// handshake runs one TLS 1.3 handshake over loopback and returns the
// server's view of the connection, or the first error of either side.
func handshake(t *testing.T, srv, cli *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		st  tls.ConnectionState
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- res{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		err = tc.Handshake()
		if err == nil {
			// TLS 1.3 client auth completes on the client's first read.
			_, err = io.ReadFull(tc, make([]byte, 1))
		}
		ch <- res{tc.ConnectionState(), err}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), cli)
	if err == nil {
		_, err = c.Write([]byte{1})
		c.Close()
	}
	r := <-ch
	if r.err != nil {
		return r.st, r.err
	}
	return r.st, err
}

func TestMutualTLS(t *testing.T) {
	dir := pki(t)
	srv, err := Server(cfg(dir, "server"))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := Client(cfg(dir, "sensor-sensor-1"))
	if err != nil {
		t.Fatal(err)
	}
	cli.ServerName = "localhost"
	st, err := handshake(t, srv, cli)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != tls.VersionTLS13 {
		t.Errorf("version %x, want TLS 1.3", st.Version)
	}
	id, err := SensorID(&st)
	if err != nil || id != "sensor-1" {
		t.Fatalf("SensorID = %q, %v", id, err)
	}
	if _, _, err := User(&st); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("sensor certificate passed as a user: %v", err)
	}

	ucli, _ := Client(cfg(dir, "client-alice"))
	ucli.ServerName = "127.0.0.1"
	st, err = handshake(t, srv, ucli)
	if err != nil {
		t.Fatal(err)
	}
	name, role, err := User(&st)
	if err != nil || name != "alice" || role != "investigator" {
		t.Fatalf("User = %q %q %v", name, role, err)
	}
	if _, err := SensorID(&st); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("user certificate passed as a sensor: %v", err)
	}
}

func TestRefused(t *testing.T) {
	dir, other := pki(t), pki(t)
	srv, _ := Server(cfg(dir, "server"))

	// A client certificate from another CA.
	cli, _ := Client(Config{CAFile: CAPath(dir), CertFile: filepath.Join(other, "sensor-sensor-1.pem"), KeyFile: filepath.Join(other, "sensor-sensor-1-key.pem")})
	cli.ServerName = "localhost"
	if _, err := handshake(t, srv, cli); err == nil {
		t.Error("client certificate from another CA accepted")
	}
	// No client certificate.
	cli, _ = Client(cfg(dir, "sensor-sensor-1"))
	cli.Certificates = nil
	cli.ServerName = "localhost"
	if _, err := handshake(t, srv, cli); err == nil {
		t.Error("client without certificate accepted")
	}
	// The client does not trust a server from another CA.
	cli, _ = Client(cfg(other, "sensor-sensor-1"))
	cli.ServerName = "localhost"
	if _, err := handshake(t, srv, cli); err == nil {
		t.Error("server certificate from another CA trusted")
	}
	// Wrong server name.
	cli, _ = Client(cfg(dir, "sensor-sensor-1"))
	cli.ServerName = "collector.example"
	if _, err := handshake(t, srv, cli); err == nil {
		t.Error("server certificate accepted for a name it does not carry")
	}
	// TLS 1.2 only client.
	cli, _ = Client(cfg(dir, "sensor-sensor-1"))
	cli.ServerName = "localhost"
	cli.MinVersion, cli.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if _, err := handshake(t, srv, cli); err == nil {
		t.Error("TLS 1.2 accepted")
	}
}

func TestValidate(t *testing.T) {
	if err := (Config{}).Validate(); !errors.Is(err, ErrMissingFile) {
		t.Errorf("empty config: %v, want ErrMissingFile", err)
	}
	if err := (Config{Insecure: true}).Validate(); err != nil {
		t.Errorf("insecure config: %v", err)
	}
	if err := (Config{Insecure: true, CAFile: "x"}).Validate(); !errors.Is(err, ErrInsecureMix) {
		t.Errorf("insecure with files: %v", err)
	}
	if c, err := Server(Config{Insecure: true}); c != nil || err != nil {
		t.Errorf("insecure server: %v %v", c, err)
	}
	if _, err := Server(Config{CAFile: "/nonexistent", CertFile: "/nonexistent", KeyFile: "/nonexistent"}); err == nil {
		t.Error("missing files accepted")
	}
}

func TestIssueChecks(t *testing.T) {
	dir := t.TempDir()
	if err := IssueSensor(dir, "s"); err == nil {
		t.Error("issued without a CA")
	}
	if err := GenerateCA(dir); err != nil {
		t.Fatal(err)
	}
	if err := GenerateCA(dir); err == nil {
		t.Error("existing CA overwritten")
	}
	for _, bad := range []string{"", "../x", "a/b", "-x", strings.Repeat("a", 200)} {
		if err := IssueSensor(dir, bad); !errors.Is(err, ErrBadName) {
			t.Errorf("IssueSensor(%q) = %v", bad, err)
		}
	}
	if err := IssueSensor(dir, "ok"); err != nil {
		t.Fatal(err)
	}
	_, key := Paths(dir, "sensor-ok")
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode: %v %v", fi.Mode(), err)
	}
}

func TestRunCertsCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	var out bytes.Buffer
	for _, args := range [][]string{
		{"init", "-dir", dir},
		{"server", "-dir", dir, "localhost", "::1"},
		{"sensor", "-dir", dir, "edge-1"},
		{"client", "-dir", dir, "-role", "admin", "bob"},
	} {
		if err := RunCertsCommand(args, &out); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out.String())
		}
	}
	for _, f := range []string{"ca.pem", "ca-key.pem", "server.pem", "sensor-edge-1.pem", "sensor-edge-1-key.pem", "client-bob.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if err := RunCertsCommand([]string{"bogus"}, &out); err == nil {
		t.Error("unknown command accepted")
	}
	if err := RunCertsCommand([]string{"sensor", "-dir", dir}, &out); err == nil {
		t.Error("sensor without id accepted")
	}
	srv, err := Server(cfg(dir, "server"))
	if err != nil {
		t.Fatal(err)
	}
	cli, _ := Client(cfg(dir, "sensor-edge-1"))
	cli.ServerName = "localhost"
	st, err := handshake(t, srv, cli)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := SensorID(&st); id != "edge-1" {
		t.Errorf("identity %q", id)
	}
}

func TestCAPool(t *testing.T) {
	dir := t.TempDir()
	if err := GenerateCA(dir); err != nil {
		t.Fatal(err)
	}
	if pool, err := CAPool(CAPath(dir)); err != nil || pool == nil {
		t.Fatalf("CAPool of the CA = %v, %v", pool, err)
	}
	if _, err := CAPool(filepath.Join(dir, "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist wrapped", err)
	}
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CAPool(junk); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("file without PEM: %v", err)
	}
}
