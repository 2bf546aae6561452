package configdoc

import (
	"encoding"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Field is one key of a configuration.
type Field struct {
	// Key is the dotted YAML path ("capture.snap_len"); the keys of a
	// list's mappings are under "list[]", of a map's under "map.*".
	Key string
	// Type is the value's kind as a reader knows it: string, int, bool,
	// duration, "list of string", mapping...
	Type string
	// Default is the default value in YAML flow style; empty for a
	// section (a mapping of further keys).
	Default string
	// Doc is the field's doc comment as one paragraph, its Go name
	// replaced by the key's last element.
	Doc string
	// Section is set for a mapping of further keys.
	Section bool
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	yamlMarshaler = reflect.TypeFor[yaml.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// Fields lists every key of the configuration v (a struct, usually the
// defaults) in declaration order, with its default and doc comment.
func Fields(v any, docs Docs) []Field {
	var out []Field
	walkStruct(&out, "", reflect.ValueOf(v), docs)
	return out
}

// walkStruct appends the keys of struct value v under prefix.
func walkStruct(out *[]Field, prefix string, v reflect.Value, docs Docs) {
	t := v.Type()
	keys := siblingKeys(t)
	for i := range t.NumField() {
		sf := t.Field(i)
		name, inline, skip := yamlName(sf)
		if skip {
			continue
		}
		fv := v.Field(i)
		if inline {
			walkStruct(out, prefix, deref(fv), docs)
			continue
		}
		key := prefix + name
		doc := cleanDoc(docs[typeID(t)][sf.Name], sf.Name, name, keys)
		walkValue(out, key, doc, fv, docs)
	}
}

// goNameRE matches a Go field name of two or more words (MaxFlows,
// RPCQueueSize): one a comment may name for a sibling key.
var goNameRE = regexp.MustCompile(`\b[A-Z][a-z0-9]*[A-Z][A-Za-z0-9]*\b`)

// siblingKeys maps the Go names of struct type t's fields to their YAML
// keys.
func siblingKeys(t reflect.Type) map[string]string {
	keys := map[string]string{}
	for i := range t.NumField() {
		if name, inline, skip := yamlName(t.Field(i)); !skip && !inline {
			keys[t.Field(i).Name] = name
		}
	}
	return keys
}

// walkValue appends the key for value v and, for a section, its keys.
func walkValue(out *[]Field, key, doc string, v reflect.Value, docs Docs) {
	v = deref(v)
	t := v.Type()
	switch {
	case isSection(t):
		*out = append(*out, Field{Key: key, Type: "mapping", Doc: doc, Section: true})
		walkStruct(out, key+".", v, docs)
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && isSection(elem(t)):
		*out = append(*out, Field{Key: key, Type: "list of mappings", Default: flowYAML(v), Doc: doc, Section: true})
		walkStruct(out, key+"[].", reflect.New(elem(t)).Elem(), docs)
	case t.Kind() == reflect.Map && isSection(elem(t)):
		*out = append(*out, Field{Key: key, Type: "map of " + typeName(t.Key()) + " to mappings", Default: flowYAML(v), Doc: doc, Section: true})
		walkStruct(out, key+".*.", reflect.New(elem(t)).Elem(), docs)
	default:
		*out = append(*out, Field{Key: key, Type: typeName(t), Default: flowYAML(v), Doc: doc})
	}
}

// yamlName is a struct field's YAML key as yaml.v3 reads it.
func yamlName(sf reflect.StructField) (name string, inline, skip bool) {
	if !sf.IsExported() && !sf.Anonymous { // yaml.v3 reads embedded unexported structs
		return "", false, true
	}
	tag := sf.Tag.Get("yaml")
	if tag == "-" {
		return "", false, true
	}
	name, opts, _ := strings.Cut(tag, ",")
	inline = strings.Contains(","+opts+",", ",inline,")
	if name == "" {
		name = strings.ToLower(sf.Name)
	}
	return name, inline, false
}

// deref follows pointers; a nil pointer becomes its element's zero value.
func deref(v reflect.Value) reflect.Value {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return reflect.New(v.Type().Elem()).Elem()
		}
		v = v.Elem()
	}
	return v
}

// elem is a container type's element type, pointers followed.
func elem(t reflect.Type) reflect.Type {
	e := t.Elem()
	for e.Kind() == reflect.Pointer {
		e = e.Elem()
	}
	return e
}

// isSection reports whether t is a mapping of keys: a struct that does
// not marshal itself.
func isSection(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	p := reflect.PointerTo(t)
	return !t.Implements(yamlMarshaler) && !p.Implements(yamlMarshaler) &&
		!t.Implements(textMarshaler) && !p.Implements(textMarshaler)
}

// typeName is t as a configuration reader knows it.
func typeName(t reflect.Type) string {
	if t == durationType {
		return "duration"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "bytes"
		}
		return "list of " + typeName(t.Elem())
	case reflect.Map:
		return "map of " + typeName(t.Key()) + " to " + typeName(t.Elem())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "int"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "uint"
	case reflect.Float32, reflect.Float64:
		return "float"
	case reflect.Struct:
		return "string" // marshals itself (as text)
	}
	return t.Kind().String()
}

// flowYAML is v in YAML flow style on one line.
func flowYAML(v reflect.Value) string {
	var n yaml.Node
	if err := n.Encode(v.Interface()); err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	setFlow(&n)
	b, err := yaml.Marshal(&n)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return strings.TrimSpace(string(b))
}

// setFlow puts n and every node under it in flow style.
func setFlow(n *yaml.Node) {
	n.Style |= yaml.FlowStyle
	for _, c := range n.Content {
		setFlow(c)
	}
}

// cleanDoc makes a doc comment one paragraph, replaces a leading Go
// field name by the YAML key, and the Go names of sibling fields it
// mentions (keys maps them) by their keys.
func cleanDoc(doc, goName, key string, keys map[string]string) string {
	doc = strings.Join(strings.Fields(doc), " ")
	for _, sep := range []string{" ", ": "} {
		if rest, ok := strings.CutPrefix(doc, goName+sep); ok {
			doc = key + sep + rest
		}
	}
	return goNameRE.ReplaceAllStringFunc(doc, func(w string) string {
		if k, ok := keys[w]; ok && strings.Contains(k, "_") { // not HBase, TLS: names too
			return k
		}
		return w
	})
}
