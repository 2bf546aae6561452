// Package configdoc documents a daemon's configuration from its Go types,
// so that the reference cannot drift from the code: the YAML keys come
// from the structs' yaml tags (inline structs merged), the defaults from
// a value (the package's DefaultConfig()), and the text from the fields' Go
// doc comments, read from the package sources with go/parser. It renders
// a commented YAML document of the defaults (what check-config
// --print-defaults prints) and Markdown reference tables
// (docs/config-reference.md). Generation reads the sources, so it runs in
// the repository (make docs); the daemons embed its YAML output.
package configdoc

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
)

// Docs holds the doc comments of struct fields: Docs[type][field] is the
// comment text of Go field field of the struct type named type
// ("import/path.Name").
type Docs map[string]map[string]string

// typeID names a named type as Docs keys it.
func typeID(t reflect.Type) string { return t.PkgPath() + "." + t.Name() }

// Source reads the doc comments of every struct type reachable from t
// (through fields, pointers, slices and maps) that is declared in module
// modPath, whose root directory is modRoot. Packages outside the module
// have no comments in the result.
func Source(t reflect.Type, modPath, modRoot string) (Docs, error) {
	pkgs := map[string]bool{}
	reachable(t, pkgs, map[reflect.Type]bool{})
	docs := Docs{}
	for pkg := range pkgs {
		rel, ok := strings.CutPrefix(pkg, modPath)
		if !ok || (rel != "" && rel[0] != '/') {
			continue
		}
		if err := parsePackage(filepath.Join(modRoot, filepath.FromSlash(rel)), pkg, docs); err != nil {
			return nil, err
		}
	}
	return docs, nil
}

// reachable adds the package of every named struct type reachable from
// t to pkgs.
func reachable(t reflect.Type, pkgs map[string]bool, seen map[reflect.Type]bool) {
	if seen[t] {
		return
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		reachable(t.Elem(), pkgs, seen)
	case reflect.Map:
		reachable(t.Elem(), pkgs, seen)
	case reflect.Struct:
		if t.PkgPath() != "" {
			pkgs[t.PkgPath()] = true
		}
		for i := range t.NumField() {
			reachable(t.Field(i).Type, pkgs, seen)
		}
	}
}

// parsePackage adds the field comments of every struct type declared in
// the non-test Go files of dir (package import path pkg) to docs.
func parsePackage(dir, pkg string, docs Docs) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read package %s: %w", pkg, err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			return fmt.Errorf("parse %s: %w", name, err)
		}
		addStructs(f, pkg, docs)
	}
	return nil
}

// addStructs adds the field comments of the struct types of one file.
func addStructs(f *ast.File, pkg string, docs Docs) {
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return true
		}
		fields := map[string]string{}
		for _, fld := range st.Fields.List {
			text := commentText(fld)
			for _, name := range fieldNames(fld) {
				fields[name] = text
			}
		}
		docs[pkg+"."+ts.Name.Name] = fields
		return true
	})
}

// commentText is a field's doc comment, else its line comment.
func commentText(f *ast.Field) string {
	if f.Doc != nil {
		return f.Doc.Text()
	}
	if f.Comment != nil {
		return f.Comment.Text()
	}
	return ""
}

// fieldNames are the Go names a field declares: its names, or for an
// embedded field its type's name.
func fieldNames(f *ast.Field) []string {
	if len(f.Names) > 0 {
		out := make([]string, len(f.Names))
		for i, n := range f.Names {
			out[i] = n.Name
		}
		return out
	}
	t := f.Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	switch x := t.(type) {
	case *ast.Ident:
		return []string{x.Name}
	case *ast.SelectorExpr:
		return []string{x.Sel.Name}
	}
	return nil
}
