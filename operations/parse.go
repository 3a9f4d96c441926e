package operations

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Migration is a parsed migration file.
type Migration struct {
	Name string
	// VersionSchema is the suffix of the new version's schema name
	// ("<schema>_<VersionSchema>"); the name when the file gives none.
	VersionSchema string
	File          string
	Operations    []Operation
	// Document is the file's content as JSON, kept in the state schema.
	Document json.RawMessage
}

type document struct {
	Name          string      `yaml:"name"`
	VersionSchema string      `yaml:"version_schema"`
	Operations    []yaml.Node `yaml:"operations"`
}

// ParseFile reads and parses a migration file (YAML or JSON).
func ParseFile(path string) (*Migration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	return Parse(path, data)
}

// Parse parses a migration document. file names it in errors and gives the
// default migration name (its base name without extension).
func Parse(file string, data []byte) (*Migration, error) {
	fail := func(op int, kind, field string, err error) error {
		return &Error{File: file, Op: op, Kind: kind, Field: field, Err: err}
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && err != io.EOF {
		return nil, fail(0, "", "", fmt.Errorf("not valid YAML or JSON: %w", err))
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil, fail(0, "", "", errors.New("the file is empty; it needs an \"operations\" list"))
	}
	// yaml.Unmarshal would read the first document only and silently drop
	// the operations of any other.
	for {
		var more yaml.Node
		err := dec.Decode(&more)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fail(0, "", "", fmt.Errorf("not valid YAML or JSON: %w", err))
		}
		if len(more.Content) > 0 && !isNull(more.Content[0]) {
			return nil, fail(0, "", "", fmt.Errorf("line %d: the file holds more than one YAML document; a migration is one document", more.Line))
		}
	}
	top := resolve(root.Content[0])
	if top.Kind != yaml.MappingNode && !isNull(top) {
		return nil, fail(0, "", "", fmt.Errorf("the file must be a map with an \"operations\" list, got %s", nodeKind(top)))
	}
	if err := checkNode(top, reflect.TypeOf(document{}), ""); err != nil {
		var fe *fieldErr
		if errors.As(err, &fe) {
			return nil, fail(0, "", fe.field, fe.err)
		}
		return nil, fail(0, "", "", err)
	}
	var doc document
	if err := top.Decode(&doc); err != nil {
		return nil, fail(0, "", "", err)
	}
	m := &Migration{Name: doc.Name, VersionSchema: doc.VersionSchema, File: file}
	if m.Name == "" {
		base := filepath.Base(file)
		m.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	if strings.TrimSpace(m.Name) == "" {
		return nil, fail(0, "", "name", errors.New("the migration has no name"))
	}
	if m.VersionSchema == "" {
		m.VersionSchema = m.Name
	}
	if len(doc.Operations) == 0 {
		return nil, fail(0, "", "operations", errors.New("no operations: a migration needs at least one"))
	}
	for i := range doc.Operations {
		pos := i + 1
		item := resolve(&doc.Operations[i])
		if item.Kind != yaml.MappingNode || len(item.Content) != 2 {
			keys := mappingKeys(item)
			return nil, fail(pos, "", "", fmt.Errorf("each operation is a map with exactly one key, the operation's name (one of %s); got %s",
				strings.Join(Names(), ", "), describeKeys(item, keys)))
		}
		kind := resolve(item.Content[0]).Value
		mk, ok := registry[kind]
		if !ok {
			return nil, fail(pos, "", "", fmt.Errorf("unknown operation %q (known: %s)", kind, strings.Join(Names(), ", ")))
		}
		op := mk()
		body := resolve(item.Content[1])
		if body.Kind != yaml.MappingNode {
			return nil, fail(pos, kind, "", fmt.Errorf("the operation's fields must be a map, got %s", nodeKind(body)))
		}
		if err := checkNode(body, reflect.TypeOf(op).Elem(), ""); err != nil {
			var fe *fieldErr
			if errors.As(err, &fe) {
				return nil, fail(pos, kind, fe.field, fe.err)
			}
			return nil, fail(pos, kind, "", err)
		}
		if err := body.Decode(op); err != nil {
			var fe *fieldErr
			if errors.As(err, &fe) {
				return nil, fail(pos, kind, fe.field, fe.err)
			}
			return nil, fail(pos, kind, "", cleanYAMLError(err))
		}
		var fe *fieldErr
		if err := checkSQLFields(op); errors.As(err, &fe) {
			return nil, fail(pos, kind, fe.field, fe.err)
		}
		m.Operations = append(m.Operations, op)
	}
	// Decoding into any checks what checkNode leaves alone (the content of
	// yaml.Node fields: duplicate keys, excessive aliasing); the JSON is
	// then built from the nodes, keeping the file's key order and the text
	// of its scalars (a generic decode sorts map keys, turns 2024-01-01 into
	// a timestamp and cannot marshal .nan).
	var generic any
	if err := top.Decode(&generic); err != nil {
		return nil, fail(0, "", "", cleanYAMLError(err))
	}
	var buf bytes.Buffer
	if err := nodeJSON(&buf, top); err != nil {
		return nil, fail(0, "", "", fmt.Errorf("convert to JSON: %w", err))
	}
	m.Document = json.RawMessage(buf.Bytes())
	return m, nil
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// nodeJSON writes a YAML node as JSON: maps in file order, strings with
// their text as written.
func nodeJSON(b *bytes.Buffer, n *yaml.Node) error {
	n = resolve(n)
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			b.WriteString("null")
			return nil
		}
		return nodeJSON(b, n.Content[0])
	case yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			k := resolve(n.Content[i])
			if k.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: a map key must be a string, got %s", k.Line, nodeKind(k))
			}
			writeJSONString(b, k.Value)
			b.WriteByte(':')
			if err := nodeJSON(b, n.Content[i+1]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := nodeJSON(b, item); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			b.WriteString("null")
		case "!!bool", "!!int", "!!float":
			var v any
			if err := n.Decode(&v); err == nil {
				if out, err := json.Marshal(v); err == nil {
					b.Write(out)
					return nil
				}
			}
			writeJSONString(b, n.Value) // .nan, .inf, integers beyond 64 bits
		case "!!binary":
			var s string
			if err := n.Decode(&s); err != nil {
				return fmt.Errorf("line %d: %w", n.Line, cleanYAMLError(err))
			}
			writeJSONString(b, s)
		default:
			writeJSONString(b, n.Value)
		}
	default:
		return fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
	return nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false) // keep "a < b" readable in the stored document
	_ = enc.Encode(s)        // a string always encodes
	b.Truncate(b.Len() - 1)  // Encode ends with a newline
}

var (
	nodeType        = reflect.TypeOf(yaml.Node{})
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// checkNode walks a YAML node against the Go type it will decode into and
// reports unknown keys and wrong shapes with the field's path. yaml.v3 can
// only be strict about unknown keys through a Decoder, and its messages name
// lines and Go types; this names the file format's fields instead.
func checkNode(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	n = resolve(n)
	if t == nodeType || t.Kind() == reflect.Interface {
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if t == indexColumnsType {
		return checkIndexColumns(n, path)
	}
	if t == opclassParamsType {
		return checkOpclassParams(n, path)
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	where := func() string {
		if path == "" {
			return "the document"
		}
		return path
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return &fieldErr{field: path, err: fmt.Errorf("must be a map, got %s", nodeKind(n))}
		}
		fields := map[string]reflect.StructField{}
		var known []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f
			known = append(known, name)
		}
		sort.Strings(known)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := resolve(n.Content[i]).Value
			f, ok := fields[key]
			if !ok {
				return &fieldErr{field: join(path, key), err: fmt.Errorf("unknown field in %s (known: %s)", where(), strings.Join(known, ", "))}
			}
			if seen[key] {
				return &fieldErr{field: join(path, key), err: errors.New("given twice")}
			}
			seen[key] = true
			if err := checkNode(n.Content[i+1], f.Type, join(path, key)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return &fieldErr{field: path, err: fmt.Errorf("must be a list, got %s", nodeKind(n))}
		}
		for i, item := range n.Content {
			if err := checkNode(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return &fieldErr{field: path, err: fmt.Errorf("must be a map, got %s", nodeKind(n))}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			if k.Kind != yaml.ScalarNode {
				return &fieldErr{field: path, err: fmt.Errorf("keys must be names, got %s", nodeKind(k))}
			}
			if seen[k.Value] {
				return &fieldErr{field: join(path, k.Value), err: errors.New("given twice")}
			}
			seen[k.Value] = true
			if err := checkNode(n.Content[i+1], t.Elem(), join(path, k.Value)); err != nil {
				return err
			}
		}
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		if strings.ContainsRune(n.Value, 0) {
			// PostgreSQL text (and jsonb, where the document is kept)
			// cannot hold a NUL byte.
			return &fieldErr{field: path, err: errors.New("contains a NUL byte, which PostgreSQL text cannot hold")}
		}
		if n.Kind != yaml.ScalarNode {
			return &fieldErr{field: path, err: fmt.Errorf("must be a %s, got %s", scalarName(t.Kind()), nodeKind(n))}
		}
		if t.Kind() == reflect.Bool && n.Tag != "!!bool" {
			return &fieldErr{field: path, err: fmt.Errorf("must be true or false, got %q", n.Value)}
		}
		if (t.Kind() == reflect.Int || t.Kind() == reflect.Int64) && n.Tag != "!!int" {
			return &fieldErr{field: path, err: fmt.Errorf("must be a whole number, got %q", n.Value)}
		}
	}
	return nil
}

var indexColumnsType = reflect.TypeOf(IndexColumns(nil))

// checkIndexColumns checks create_index's "columns", which IndexColumns
// decodes itself: a list of names or {expression: ...} maps, or a map of
// name to options (or null).
func checkIndexColumns(n *yaml.Node, path string) error {
	colType := reflect.TypeOf(IndexColumn{})
	switch n.Kind {
	case yaml.SequenceNode:
		for i, item := range n.Content {
			item = resolve(item)
			field := fmt.Sprintf("%s[%d]", path, i)
			switch item.Kind {
			case yaml.ScalarNode:
			case yaml.MappingNode:
				if err := checkNode(item, colType, field); err != nil {
					return err
				}
				// pgroll's index field names its column; online's
				// extension gives an expression instead.
				col, expr := mapValue(item, "column"), mapValue(item, "expression")
				if (col == nil) == (expr == nil) {
					return &fieldErr{field: field, err: errors.New("give exactly one of \"column\" (a column name) and \"expression\"")}
				}
			default:
				return &fieldErr{field: field, err: fmt.Errorf("must be a column name or a map with \"column\" or \"expression\", got %s", nodeKind(item))}
			}
		}
	case yaml.MappingNode:
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			if k.Kind != yaml.ScalarNode {
				return &fieldErr{field: path, err: fmt.Errorf("keys must be column names, got %s", nodeKind(k))}
			}
			if seen[k.Value] {
				return &fieldErr{field: join(path, k.Value), err: errors.New("given twice")}
			}
			seen[k.Value] = true
			if err := checkNode(n.Content[i+1], colType, join(path, k.Value)); err != nil {
				return err
			}
			for _, key := range []string{"column", "expression"} {
				if mapValue(n.Content[i+1], key) != nil {
					return &fieldErr{field: join(join(path, k.Value), key), err: errors.New("the map form names the column by its key; use the list form for a column or an expression")}
				}
			}
		}
	default:
		return &fieldErr{field: path, err: fmt.Errorf("must be a list of column names or index fields, or a map of column name to options, got %s", nodeKind(n))}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func scalarName(k reflect.Kind) string {
	switch k {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64:
		return "whole number"
	case reflect.Float64:
		return "number"
	}
	return "string"
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "something else"
}

func mappingKeys(n *yaml.Node) []string {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	var keys []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
	}
	return keys
}

func describeKeys(n *yaml.Node, keys []string) string {
	if n.Kind != yaml.MappingNode {
		return nodeKind(n)
	}
	if len(keys) == 0 {
		return "an empty map"
	}
	return fmt.Sprintf("%d keys (%s)", len(keys), strings.Join(keys, ", "))
}

func cleanYAMLError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return err
}

// sameType reports whether two operations are of the same Go type.
func sameType(a, b Operation) bool { return reflect.TypeOf(a) == reflect.TypeOf(b) }

// mapValue is the value of key in a mapping node, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if resolve(n.Content[i]).Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
