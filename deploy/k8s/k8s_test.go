package k8s

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// repoRoot is the main module's root, seen from this package's
// directory (go test runs a package's tests in its directory). This
// module imports nothing from the main module: the test builds and runs
// its binaries.
const repoRoot = "../.."

// rendered is the kustomization's output decoded into the API types.
type rendered struct {
	namespaces []corev1.Namespace
	configMaps map[string]corev1.ConfigMap
	daemonSets []appsv1.DaemonSet
	deploys    []appsv1.Deployment
	services   []corev1.Service
	hpas       []autoscalingv2.HorizontalPodAutoscaler
}

// strict decodes a rendered object into out, refusing unknown fields (a
// misspelt or misplaced key is an error, as with kubectl --validate=strict).
func strict(data []byte, out any) error {
	return yaml.UnmarshalStrict(data, out)
}

func render(t *testing.T) rendered {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), ".")
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	r := rendered{configMaps: map[string]corev1.ConfigMap{}}
	for _, res := range resMap.Resources() {
		data, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		gvk := res.GetGvk()
		id := fmt.Sprintf("%s/%s %s", gvk.Group, gvk.Version, gvk.Kind)
		var target any
		switch id {
		case "/v1 Namespace":
			r.namespaces = append(r.namespaces, corev1.Namespace{})
			target = &r.namespaces[len(r.namespaces)-1]
		case "/v1 ConfigMap":
			var cm corev1.ConfigMap
			if err := strict(data, &cm); err != nil {
				t.Fatalf("%s %s: %v", id, res.GetName(), err)
			}
			r.configMaps[cm.Name] = cm
			continue
		case "apps/v1 DaemonSet":
			r.daemonSets = append(r.daemonSets, appsv1.DaemonSet{})
			target = &r.daemonSets[len(r.daemonSets)-1]
		case "apps/v1 Deployment":
			r.deploys = append(r.deploys, appsv1.Deployment{})
			target = &r.deploys[len(r.deploys)-1]
		case "/v1 Service":
			r.services = append(r.services, corev1.Service{})
			target = &r.services[len(r.services)-1]
		case "autoscaling/v2 HorizontalPodAutoscaler":
			r.hpas = append(r.hpas, autoscalingv2.HorizontalPodAutoscaler{})
			target = &r.hpas[len(r.hpas)-1]
		default:
			t.Fatalf("unexpected object %s %s", id, res.GetName())
		}
		if err := strict(data, target); err != nil {
			t.Fatalf("%s %s: %v", id, res.GetName(), err)
		}
	}
	return r
}

// checkPod checks what the API server would refuse or what would leave a
// pod pending: selector vs labels, mounts vs volumes, ConfigMaps that exist,
// named ports that exist.
func checkPod(t *testing.T, r rendered, name string, sel map[string]string, tpl corev1.PodTemplateSpec) {
	t.Helper()
	for k, v := range sel {
		if tpl.Labels[k] != v {
			t.Errorf("%s: selector %s=%s does not match the template labels %v", name, k, v, tpl.Labels)
		}
	}
	vols := map[string]corev1.Volume{}
	for _, v := range tpl.Spec.Volumes {
		vols[v.Name] = v
		if v.ConfigMap != nil {
			if _, ok := r.configMaps[v.ConfigMap.Name]; !ok {
				t.Errorf("%s: volume %s refers to ConfigMap %q, not rendered", name, v.Name, v.ConfigMap.Name)
			}
		}
	}
	if len(tpl.Spec.Containers) == 0 {
		t.Fatalf("%s: no containers", name)
	}
	for _, c := range tpl.Spec.Containers {
		for _, m := range c.VolumeMounts {
			if _, ok := vols[m.Name]; !ok {
				t.Errorf("%s/%s: mount of undeclared volume %q", name, c.Name, m.Name)
			}
		}
		ports := map[string]bool{}
		for _, p := range c.Ports {
			ports[p.Name] = true
		}
		for _, pr := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
			if pr == nil {
				continue
			}
			if pr.HTTPGet != nil && pr.HTTPGet.Port.StrVal != "" && !ports[pr.HTTPGet.Port.StrVal] {
				t.Errorf("%s/%s: probe on unknown port %q", name, c.Name, pr.HTTPGet.Port.StrVal)
			}
			if pr.TCPSocket != nil && pr.TCPSocket.Port.StrVal != "" && !ports[pr.TCPSocket.Port.StrVal] {
				t.Errorf("%s/%s: probe on unknown port %q", name, c.Name, pr.TCPSocket.Port.StrVal)
			}
		}
	}
}

func caps(c corev1.Container) []string {
	var out []string
	if sc := c.SecurityContext; sc != nil && sc.Capabilities != nil {
		for _, a := range sc.Capabilities.Add {
			out = append(out, string(a))
		}
	}
	slices.Sort(out)
	return out
}

func dropsAll(c corev1.Container) bool {
	sc := c.SecurityContext
	return sc != nil && sc.Capabilities != nil && slices.Contains(sc.Capabilities.Drop, "ALL") &&
		sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
}

func TestKustomization(t *testing.T) {
	r := render(t)
	if len(r.namespaces) != 1 || len(r.daemonSets) != 1 || len(r.deploys) != 1 || len(r.services) != 1 || len(r.hpas) != 1 || len(r.configMaps) != 2 {
		t.Fatalf("rendered %d namespaces, %d daemonsets, %d deployments, %d services, %d hpas, %d configmaps; want 1,1,1,1,1,2",
			len(r.namespaces), len(r.daemonSets), len(r.deploys), len(r.services), len(r.hpas), len(r.configMaps))
	}

	ds := r.daemonSets[0]
	checkPod(t, r, "DaemonSet "+ds.Name, ds.Spec.Selector.MatchLabels, ds.Spec.Template)
	if !ds.Spec.Template.Spec.HostNetwork {
		t.Error("sensor DaemonSet is not on the host network")
	}
	sc := ds.Spec.Template.Spec.Containers[0]
	if got, want := caps(sc), []string{"BPF", "NET_ADMIN", "NET_RAW", "PERFMON"}; !slices.Equal(got, want) || !dropsAll(sc) {
		t.Errorf("sensor capabilities add %v (want %v), drop ALL and no privilege escalation: %v", got, want, dropsAll(sc))
	}

	dep := r.deploys[0]
	checkPod(t, r, "Deployment "+dep.Name, dep.Spec.Selector.MatchLabels, dep.Spec.Template)
	cc := dep.Spec.Template.Spec.Containers[0]
	if len(caps(cc)) != 0 || !dropsAll(cc) {
		t.Errorf("collector capabilities: add %v, drop ALL %v; want none", caps(cc), dropsAll(cc))
	}
	secrets := 0
	for _, v := range append(dep.Spec.Template.Spec.Volumes, ds.Spec.Template.Spec.Volumes...) {
		if v.Secret != nil {
			secrets++
		}
	}
	if secrets < 2 {
		t.Errorf("certificates: %d Secret volumes, want the sensor's and the collector's", secrets)
	}

	svc := r.services[0]
	for k, v := range svc.Spec.Selector {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not select the collector pods", k, v)
		}
	}
	ports := map[string]bool{}
	for _, p := range cc.Ports {
		ports[p.Name] = true
	}
	for _, p := range svc.Spec.Ports {
		if !ports[p.TargetPort.StrVal] {
			t.Errorf("Service port %s targets %q, not a collector container port", p.Name, p.TargetPort.StrVal)
		}
	}

	hpa := r.hpas[0]
	if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != dep.Name || ref.APIVersion != "apps/v1" {
		t.Errorf("HPA targets %+v, not the collector Deployment %s", ref, dep.Name)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas > hpa.Spec.MaxReplicas {
		t.Errorf("HPA replicas min %v max %d", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
}

// TestStrictDecodingRefusesTypos shows that the decoding above is a real
// check: a manifest with a misplaced key fails.
func TestStrictDecodingRefusesTypos(t *testing.T) {
	data, err := os.ReadFile("sensor-daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	if err := strict(data, &ds); err != nil {
		t.Fatalf("the manifest itself: %v", err)
	}
	bad := append([]byte(nil), data...)
	bad = append(bad, []byte("  hostNetwrok: true\n")...)
	if err := strict(bad, &ds); err == nil {
		t.Fatal("unknown field accepted")
	}
}

// TestConfigsCheck runs each daemon's check-config on the ConfigMaps'
// configuration files.
func TestConfigsCheck(t *testing.T) {
	bin := buildBinaries(t)
	for _, d := range []string{"sensor", "collector"} {
		args := []string{"check-config", "--config", d + ".yaml"}
		if d == "sensor" {
			args = sensorCheckArgs(t, bin)
		}
		out, err := exec.Command(filepath.Join(bin, "tapir-"+d), args...).CombinedOutput()
		if err != nil {
			t.Errorf("tapir-%s check-config %s.yaml: %v\n%s", d, d, err, out)
		}
	}
}

// buildBinaries builds the three binaries of the main module into a
// temporary directory and returns it.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/tapir-sensor", "./cmd/tapir-collector", "./cmd/tapir")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// sensorCheckArgs returns check-config's arguments for sensor.yaml as the
// DaemonSet runs it (--sensor-id from the node name): check-config reads
// the TLS files the config names, so the Secret's files are made here
// with tapir certs and the config copied with their directory.
func sensorCheckArgs(t *testing.T, bin string) []string {
	t.Helper()
	const node = "node-1"
	certs := t.TempDir()
	for _, args := range [][]string{{"certs", "init", "-dir", certs}, {"certs", "sensor", "-dir", certs, node}} {
		if out, err := exec.Command(filepath.Join(bin, "tapir"), args...).CombinedOutput(); err != nil {
			t.Fatalf("tapir %v: %v\n%s", args, err, out)
		}
	}
	// tapir certs' file names (internal/tlsconfig) and the Secret's.
	for from, to := range map[string]string{"ca.pem": "ca.crt", "sensor-" + node + ".pem": "tls.crt", "sensor-" + node + "-key.pem": "tls.key"} {
		if err := os.Rename(filepath.Join(certs, from), filepath.Join(certs, to)); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile("sensor.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "sensor.yaml")
	if err := os.WriteFile(cfg, bytes.ReplaceAll(raw, []byte("/etc/tapir/certs/"), []byte(certs+"/")), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"check-config", "--config", cfg, "--sensor-id", node}
}
