// Package searchindextest gives tests the OpenSearch node named by the
// environment variable TAPIR_OPENSEARCH (e.g. http://127.0.0.1:9200, which
// `make test` and `make services-up` export) and small REST helpers.
// Without TAPIR_OPENSEARCH tests skip, or fail when TAPIR_REQUIRE_ALL=1.
package searchindextest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// EnvURL is the environment variable naming the node.
const EnvURL = "TAPIR_OPENSEARCH"

// URL returns TAPIR_OPENSEARCH, or skips t (fails it under
// TAPIR_REQUIRE_ALL=1) when unset.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		testenv.SkipOrFail(t, EnvURL+" is not set (start OpenSearch with make services-up)")
	}
	return strings.TrimRight(u, "/")
}

// Do sends a request with a JSON (or NDJSON) body and decodes the JSON
// answer into out (when not nil); it returns the status code.
func Do(base, method, path string, body []byte, out any) (int, error) {
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	ct := "application/json"
	if strings.HasPrefix(path, "/_bulk") {
		ct = "application/x-ndjson"
	}
	req.Header.Set("Content-Type", ct)
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w: %.300s", method, path, err, raw)
		}
	}
	return resp.StatusCode, nil
}

// MustDo is Do that fails t on a transport error or a status >= 300.
func MustDo(t testing.TB, base, method, path string, body []byte, out any) {
	t.Helper()
	var raw json.RawMessage
	code, err := Do(base, method, path, body, &raw)
	if err != nil || code >= 300 {
		t.Fatalf("%s %s: %d %v: %.500s", method, path, code, err, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// MappedLeaves lists the dotted paths of the leaf fields of a mapping's
// properties (object fields descended, multi-fields left out).
func MappedLeaves(prefix string, props map[string]any, out map[string]string) {
	for name, v := range props {
		f, _ := v.(map[string]any)
		p := strings.TrimPrefix(prefix+"."+name, ".")
		if sub, ok := f["properties"].(map[string]any); ok {
			MappedLeaves(p, sub, out)
			continue
		}
		typ, _ := f["type"].(string)
		out[p] = typ
	}
}

// TemplateLeaves returns the leaf fields (path -> type) of
// deploy/opensearch/opensearch-template.json.
func TemplateLeaves(t testing.TB) map[string]string {
	t.Helper()
	var tpl struct {
		Template struct {
			Mappings struct {
				Properties map[string]any `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
	}
	raw, err := os.ReadFile(TemplatePath(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &tpl); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	MappedLeaves("", tpl.Template.Mappings.Properties, out)
	return out
}

// TemplatePath is deploy/opensearch/opensearch-template.json.
func TemplatePath(t testing.TB) string {
	return testenv.RepoRoot(t) + "/deploy/opensearch/opensearch-template.json"
}

// IndexLeaves returns the leaf fields (path -> type) the node mapped in
// the indices matching pattern, after the fact: fields the template did
// not declare show up here as dynamic mappings.
func IndexLeaves(t testing.TB, base, pattern string) map[string]string {
	t.Helper()
	var m map[string]struct {
		Mappings struct {
			Properties map[string]any `json:"properties"`
		} `json:"mappings"`
	}
	MustDo(t, base, "GET", "/"+pattern+"/_mapping", nil, &m)
	out := map[string]string{}
	for _, idx := range m {
		MappedLeaves("", idx.Mappings.Properties, out)
	}
	return out
}

// Unexpected returns the fields of got that the template does not map, or
// maps with another type: "path: type (template: type)".
func Unexpected(template, got map[string]string) []string {
	var out []string
	for p, typ := range got {
		if want, ok := template[p]; !ok || want != typ {
			out = append(out, fmt.Sprintf("%s: %s (template: %q)", p, typ, want))
		}
	}
	return out
}

// ReadTemplate returns deploy/opensearch/opensearch-template.json.
func ReadTemplate(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(TemplatePath(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
