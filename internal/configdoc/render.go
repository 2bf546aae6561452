package configdoc

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// commentWidth is where YAML comments wrap.
const commentWidth = 76

// YAML renders v as a YAML document with each key's doc comment (from
// fields) above it and header as the document's leading comment. What
// it returns loads back into v's type as v.
func YAML(v any, fields []Field, header string) ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, fmt.Errorf("encode defaults: %w", err)
	}
	docs := make(map[string]string, len(fields))
	for _, f := range fields {
		docs[f.Key] = f.Doc
	}
	annotate(&n, "", docs, commentWidth)
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{&n}, HeadComment: wrap(header, commentWidth)}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("write defaults: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write defaults: %w", err)
	}
	return buf.Bytes(), nil
}

// annotate sets the head comment of every mapping key under n (path
// prefix) from docs, narrower by two columns per nesting level.
func annotate(n *yaml.Node, prefix string, docs map[string]string, width int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			key := prefix + k.Value
			if d := docs[key]; d != "" {
				k.HeadComment = wrap(d, width)
			}
			annotate(n.Content[i+1], key+".", docs, width-2)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			annotate(c, strings.TrimSuffix(prefix, ".")+"[].", docs, width-2)
		}
	}
}

// wrap breaks text into comment lines of at most width characters.
func wrap(text string, width int) string {
	width = max(width, 40)
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width-2 {
			lines = append(lines, "# "+line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, "# "+line)
	}
	return strings.Join(lines, "\n")
}

// Markdown writes fields as reference tables: the top-level keys first,
// then one table per top-level section under a heading of the given
// level ("###"), with the section's own doc as its introduction.
func Markdown(w io.Writer, fields []Field, level string) error {
	var top []Field
	for _, f := range fields {
		if !strings.ContainsAny(f.Key, ".[") && !f.Section {
			top = append(top, f)
		}
	}
	var buf bytes.Buffer
	if len(top) > 0 {
		fmt.Fprintf(&buf, "%s Top-level keys\n\n", level)
		table(&buf, top)
	}
	for _, s := range fields {
		if !s.Section || strings.ContainsAny(s.Key, ".[") {
			continue
		}
		fmt.Fprintf(&buf, "%s `%s`\n\n", level, s.Key)
		if s.Doc != "" {
			fmt.Fprintf(&buf, "%s\n\n", s.Doc)
		}
		table(&buf, under(fields, s.Key))
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// under lists the fields below section key.
func under(fields []Field, key string) []Field {
	var out []Field
	for _, f := range fields {
		if strings.HasPrefix(f.Key, key+".") || strings.HasPrefix(f.Key, key+"[]") {
			out = append(out, f)
		}
	}
	return out
}

// table writes one reference table.
func table(buf *bytes.Buffer, fields []Field) {
	buf.WriteString("| key | type | default | meaning |\n|---|---|---|---|\n")
	for _, f := range fields {
		def := ""
		if f.Default != "" {
			def = "`" + cell(f.Default) + "`"
		}
		fmt.Fprintf(buf, "| `%s` | %s | %s | %s |\n", f.Key, f.Type, def, cell(f.Doc))
	}
	buf.WriteString("\n")
}

// cell escapes text for a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// PrintDefaultsFlag is the check-config flag that prints the default
// configuration.
const PrintDefaultsFlag = "print-defaults"

// PrintDefaultsRequested reports whether a daemon's arguments (after the
// program name) ask for check-config --print-defaults.
func PrintDefaultsRequested(args []string) bool {
	if len(args) == 0 || args[0] != "check-config" {
		return false
	}
	for _, a := range args[1:] {
		switch a {
		case "-" + PrintDefaultsFlag, "--" + PrintDefaultsFlag, "-" + PrintDefaultsFlag + "=true", "--" + PrintDefaultsFlag + "=true":
			return true
		}
	}
	return false
}
