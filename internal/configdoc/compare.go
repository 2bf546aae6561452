package configdoc

import (
	"fmt"
	"reflect"
)

// Differences lists where configuration a differs from b, by Go field
// path, as a loaded file differs from the defaults it was written from:
// a nil and an empty slice or map are equal (YAML writes both as [] or
// {}), everything else is compared exactly, unexported fields included.
func Differences(a, b any) []string {
	var out []string
	diff(&out, "", reflect.ValueOf(a), reflect.ValueOf(b))
	return out
}

// diff appends the paths under path where a and b differ.
func diff(out *[]string, path string, a, b reflect.Value) {
	if a.IsValid() != b.IsValid() || (a.IsValid() && a.Type() != b.Type()) {
		*out = append(*out, path+": different types")
		return
	}
	if !a.IsValid() {
		return
	}
	switch a.Kind() {
	case reflect.Struct:
		for i := range a.NumField() {
			diff(out, path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i))
		}
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			*out = append(*out, fmt.Sprintf("%s: %d items, not %d", path, a.Len(), b.Len()))
			return
		}
		for i := range a.Len() {
			diff(out, fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i))
		}
	case reflect.Map:
		diffMap(out, path, a, b)
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() != b.IsNil() {
			*out = append(*out, path+": nil on one side only")
			return
		}
		diff(out, path, a.Elem(), b.Elem())
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		if a.IsNil() != b.IsNil() {
			*out = append(*out, path+": nil on one side only")
		}
	default:
		if !scalarEqual(a, b) {
			*out = append(*out, fmt.Sprintf("%s: %v, not %v", path, a, b))
		}
	}
}

// diffMap compares two maps key by key.
func diffMap(out *[]string, path string, a, b reflect.Value) {
	if a.Len() != b.Len() {
		*out = append(*out, fmt.Sprintf("%s: %d entries, not %d", path, a.Len(), b.Len()))
		return
	}
	for _, k := range a.MapKeys() {
		bv := b.MapIndex(k)
		if !bv.IsValid() {
			*out = append(*out, fmt.Sprintf("%s[%v]: missing on one side", path, k))
			continue
		}
		diff(out, fmt.Sprintf("%s[%v]", path, k), a.MapIndex(k), bv)
	}
}

// scalarEqual compares two values of a scalar kind.
func scalarEqual(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	case reflect.Float32, reflect.Float64:
		return a.Float() == b.Float()
	case reflect.Complex64, reflect.Complex128:
		return a.Complex() == b.Complex()
	case reflect.String:
		return a.String() == b.String()
	}
	return false
}
