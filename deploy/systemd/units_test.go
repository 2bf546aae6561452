package systemd

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/internal/tlsconfig"
)

// unit is a parsed unit file: section -> key -> values in file order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	sec := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			sec = line[1 : len(line)-1]
			u[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || sec == "" {
				t.Fatalf("%s:%d: not a key=value in a section: %q", path, n, line)
			}
			u[sec][k] = append(u[sec][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u unit) last(sec, key string) string {
	v := u[sec][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func fields(s string) map[string]bool {
	m := map[string]bool{}
	for _, f := range strings.Fields(s) {
		m[f] = true
	}
	return m
}

func sameSet(a, b string) bool {
	fa, fb := fields(a), fields(b)
	if len(fa) != len(fb) {
		return false
	}
	for k := range fa {
		if !fb[k] {
			return false
		}
	}
	return true
}

var hardening = map[string]string{
	"NoNewPrivileges":         "yes",
	"ProtectSystem":           "strict",
	"ProtectHome":             "yes",
	"PrivateTmp":              "yes",
	"PrivateDevices":          "yes",
	"ProtectKernelTunables":   "yes",
	"ProtectKernelModules":    "yes",
	"ProtectKernelLogs":       "yes",
	"ProtectControlGroups":    "yes",
	"RestrictNamespaces":      "yes",
	"RestrictRealtime":        "yes",
	"RestrictSUIDSGID":        "yes",
	"LockPersonality":         "yes",
	"MemoryDenyWriteExecute":  "yes",
	"SystemCallArchitectures": "native",
	"User":                    "tapir",
	"ReadWritePaths":          "/var/lib/tapir",
	"ExecReload":              "/bin/kill -HUP $MAINPID",
}

func TestUnits(t *testing.T) {
	cases := []struct {
		file, caps, families, syscalls string
	}{
		{"tapir-sensor.service", "CAP_NET_RAW CAP_NET_ADMIN CAP_BPF CAP_PERFMON",
			"AF_PACKET AF_NETLINK AF_INET AF_INET6 AF_UNIX", "@system-service bpf perf_event_open"},
		{"tapir-collector.service", "", "AF_NETLINK AF_INET AF_INET6 AF_UNIX", "@system-service"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			u := parseUnit(t, c.file)
			s := "Service"
			for k, want := range hardening {
				if got := u.last(s, k); got != want {
					t.Errorf("%s=%q, want %q", k, got, want)
				}
			}
			for _, k := range []string{"AmbientCapabilities", "CapabilityBoundingSet"} {
				if v, ok := u[s][k]; !ok || !sameSet(v[len(v)-1], c.caps) {
					t.Errorf("%s=%q, want exactly %q", k, v, c.caps)
				}
			}
			if got := u.last(s, "RestrictAddressFamilies"); !sameSet(got, c.families) {
				t.Errorf("RestrictAddressFamilies=%q, want %q", got, c.families)
			}
			if got := u[s]["SystemCallFilter"]; len(got) == 0 || !sameSet(got[0], c.syscalls) {
				t.Errorf("SystemCallFilter (allow list)=%q, want %q", got, c.syscalls)
			}
			if u.last("Install", "WantedBy") != "multi-user.target" {
				t.Errorf("not wanted by multi-user.target")
			}
		})
	}
}

// TestSysusers checks that the sysusers.d line creates the units' user.
func TestSysusers(t *testing.T) {
	data, err := os.ReadFile("tapir.sysusers.conf")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "u" && f[1] == "tapir" {
			found = true
		}
	}
	if !found {
		t.Fatal("no `u tapir` line")
	}
}

// TestCommandsAndVerify builds the daemons, points the units' command
// lines at them and at the example configs, runs each unit's
// ExecStartPre (check-config) and checks the units with
// systemd-analyze verify (which also checks that the commands exist):
// any warning on stderr fails.
func TestCommandsAndVerify(t *testing.T) {
	root := testenv.RepoRoot(t)
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/tapir-sensor", "./cmd/tapir-collector")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var units []string
	for _, name := range []string{"tapir-sensor", "tapir-collector"} {
		data, err := os.ReadFile(name + ".service")
		if err != nil {
			t.Fatal(err)
		}
		short := strings.TrimPrefix(name, "tapir-")
		s := strings.ReplaceAll(string(data), "/usr/local/bin/", dir+"/")
		conf := filepath.Join(root, "deploy", short+".example.yaml")
		if short == "sensor" {
			conf = sensorExampleWithCerts(t, conf)
		}
		s = strings.ReplaceAll(s, "/etc/tapir/"+short+".yaml", conf)
		p := filepath.Join(dir, name+".service")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
		u := parseUnit(t, p)
		pre := strings.Fields(u.last("Service", "ExecStartPre"))
		if out, err := exec.Command(pre[0], pre[1:]...).CombinedOutput(); err != nil {
			t.Errorf("%s ExecStartPre %q: %v\n%s", name, pre, err, out)
		}
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		testenv.SkipOrFail(t, "systemd-analyze not installed (Debian package systemd)")
	}
	cmd := exec.Command(sa, append([]string{"verify", "--man=no"}, units...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, stderr.String())
	}
	for _, p := range units {
		out, err := exec.Command(sa, "security", "--offline=yes", p).CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-analyze security: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Logf("%s", lines[len(lines)-1])
	}
}

// sensorExampleWithCerts copies the sensor example config with its
// /etc/tapir/certs files made in a temporary directory (tapir certs'
// code, for the example's sensor id tap-01): check-config reads them.
func sensorExampleWithCerts(t *testing.T, example string) string {
	t.Helper()
	certs := t.TempDir()
	if err := tlsconfig.GenerateCA(certs); err != nil {
		t.Fatal(err)
	}
	if err := tlsconfig.IssueSensor(certs, "tap-01"); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "sensor.yaml")
	if err := os.WriteFile(p, bytes.ReplaceAll(raw, []byte("/etc/tapir/certs/"), []byte(certs+"/")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
