package flowinput

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
)

// ErrTooManyTemplates: an exporter sent more templates than MaxTemplates.
var ErrTooManyTemplates = errors.New("flowinput: too many templates for exporter")

// Templates holds the NetFlow v9 and IPFIX templates of every exporter,
// keyed by exporter address and, inside goflow2's template system, by
// version, observation domain (v9 source id) and template id. Save and
// Load persist them as one JSON file so that a restarted collector
// decodes data sets at once instead of dropping them until the next
// template refresh. Safe for concurrent use.
type Templates struct {
	max   int
	mu    sync.Mutex
	sys   map[string]*exporterTemplates
	dirty atomic.Bool
}

// NewTemplates returns an empty store keeping at most max templates per
// exporter.
func NewTemplates(max int) *Templates {
	return &Templates{max: max, sys: map[string]*exporterTemplates{}}
}

// system returns the template system of an exporter, creating it.
func (t *Templates) system(exporter string) *exporterTemplates {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sys[exporter]
	if s == nil {
		s = &exporterTemplates{NetFlowTemplateSystem: netflow.CreateTemplateSystem(), owner: t}
		t.sys[exporter] = s
	}
	return s
}

// exporterTemplates is goflow2's in-memory template system with a bound
// and a dirty mark for persistence.
type exporterTemplates struct {
	netflow.NetFlowTemplateSystem
	owner *Templates
	n     atomic.Int64
}

// ErrEmptyTemplate: a template whose records would take no bytes (no
// fields, or only zero-length ones). goflow2 would loop forever on its
// data sets: refused.
var ErrEmptyTemplate = errors.New("flowinput: template of zero-length records")

// recordBytes is the least number of bytes a record of the fields takes
// (a variable-length field takes at least its length byte).
func recordBytes(fields ...[]netflow.Field) int {
	n := 0
	for _, fs := range fields {
		for _, f := range fs {
			if f.Length == 0xffff {
				n++
			} else {
				n += int(f.Length)
			}
		}
	}
	return n
}

// AddTemplate implements netflow.NetFlowTemplateSystem.
func (e *exporterTemplates) AddTemplate(version uint16, obs uint32, id uint16, tmpl interface{}) error {
	var size int
	switch v := tmpl.(type) {
	case netflow.TemplateRecord:
		size = recordBytes(v.Fields)
	case netflow.NFv9OptionsTemplateRecord:
		size = recordBytes(v.Scopes, v.Options)
	case netflow.IPFIXOptionsTemplateRecord:
		size = recordBytes(v.Scopes, v.Options)
	}
	if size == 0 {
		return ErrEmptyTemplate
	}
	if old, err := e.GetTemplate(version, obs, id); err == nil {
		b1, _ := json.Marshal(old)
		b2, _ := json.Marshal(tmpl)
		if string(b1) == string(b2) {
			return nil // a refresh of a known template: nothing to persist
		}
	} else if e.n.Load() >= int64(e.owner.max) {
		return ErrTooManyTemplates
	} else {
		e.n.Add(1)
	}
	e.owner.dirty.Store(true)
	return e.NetFlowTemplateSystem.AddTemplate(version, obs, id, tmpl)
}

// RemoveTemplate implements netflow.NetFlowTemplateSystem.
func (e *exporterTemplates) RemoveTemplate(version uint16, obs uint32, id uint16) (interface{}, error) {
	t, err := e.NetFlowTemplateSystem.RemoveTemplate(version, obs, id)
	if err == nil {
		e.n.Add(-1)
		e.owner.dirty.Store(true)
	}
	return t, err
}

// savedTemplate is one template in the file.
type savedTemplate struct {
	Version uint16 `json:"version"`
	Domain  uint32 `json:"observation_domain"`
	ID      uint16 `json:"template_id"`
	Kind    string `json:"kind"` // data, nfv9-options, ipfix-options
	// One of these is set, by Kind.
	Data         *netflow.TemplateRecord             `json:"data,omitempty"`
	NFv9Options  *netflow.NFv9OptionsTemplateRecord  `json:"nfv9_options,omitempty"`
	IPFIXOptions *netflow.IPFIXOptionsTemplateRecord `json:"ipfix_options,omitempty"`
}

// Dirty reports whether templates changed since the last Save or Load.
func (t *Templates) Dirty() bool { return t.dirty.Load() }

// Save writes every template to path atomically (temporary file, fsync,
// rename).
func (t *Templates) Save(path string) error {
	t.dirty.Store(false)
	out := map[string][]savedTemplate{}
	t.mu.Lock()
	for exp, s := range t.sys {
		for key, tmpl := range s.GetTemplates() {
			st := savedTemplate{Version: uint16(key >> 48), Domain: uint32(key >> 16), ID: uint16(key)}
			switch v := tmpl.(type) {
			case netflow.TemplateRecord:
				st.Kind, st.Data = "data", &v
			case netflow.NFv9OptionsTemplateRecord:
				st.Kind, st.NFv9Options = "nfv9-options", &v
			case netflow.IPFIXOptionsTemplateRecord:
				st.Kind, st.IPFIXOptions = "ipfix-options", &v
			default:
				continue
			}
			out[exp] = append(out[exp], st)
		}
	}
	t.mu.Unlock()
	raw, err := json.Marshal(out)
	if err != nil {
		t.dirty.Store(true)
		return fmt.Errorf("encode templates: %w", err)
	}
	if err := writeFileAtomic(path, raw); err != nil {
		t.dirty.Store(true)
		return err
	}
	return nil
}

// Load reads templates saved by Save; a missing file is no error.
func (t *Templates) Load(path string) (int, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read templates: %w", err)
	}
	var in map[string][]savedTemplate
	if err := json.Unmarshal(raw, &in); err != nil {
		return 0, fmt.Errorf("decode templates %s: %w", path, err)
	}
	n := 0
	for exp, list := range in {
		s := t.system(exp)
		for _, st := range list {
			var tmpl interface{}
			switch {
			case st.Kind == "data" && st.Data != nil:
				tmpl = *st.Data
			case st.Kind == "nfv9-options" && st.NFv9Options != nil:
				tmpl = *st.NFv9Options
			case st.Kind == "ipfix-options" && st.IPFIXOptions != nil:
				tmpl = *st.IPFIXOptions
			default:
				continue
			}
			if err := s.AddTemplate(st.Version, st.Domain, st.ID, tmpl); err == nil {
				n++
			}
		}
	}
	t.dirty.Store(false)
	return n, nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".flow-templates-*")
	if err != nil {
		return fmt.Errorf("save templates: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("save templates: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save templates: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save templates: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save templates: %w", err)
	}
	return nil
}
