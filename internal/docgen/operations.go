package docgen

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"text/template"

	"gopkg.in/yaml.v3"

	"github.com/onlinepg/online/operations"
)

//go:embed text
var text embed.FS

// extOperations are online's own operations, beyond pgroll's format.
var extOperations = map[string]bool{
	"create_enum": true, "add_enum_value": true, "drop_enum": true, "update_rows": true,
}

// field is one key of the file format, with its path from the operation
// ("column.references.table", "columns[].name").
type field struct {
	Path     string
	Type     string
	Required bool
	Note     string
	Owner    string // the Go type the key belongs to: "Column", "ForeignKey"
	Key      string // the key itself: "on_delete"
}

var (
	nodeType         = reflect.TypeOf(yaml.Node{})
	indexColumnsType = reflect.TypeOf(operations.IndexColumns{})
	opclassParamType = reflect.TypeOf(operations.OpclassParams{})
)

// fields walks the yaml tags of t as the parser reads them.
func fields(t reflect.Type, prefix string) []field {
	var out []field
	req := operations.RequiredFields(t)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		fd := field{Path: prefix + name, Required: slices.Contains(req, name), Owner: t.Name(), Key: name}
		var nested []field
		switch {
		case ft == nodeType:
			fd.Type = "string or null"
		case ft == indexColumnsType:
			fd.Type = "list of index columns or column names; or a map of name to settings"
			nested = fields(reflect.TypeOf(operations.IndexColumn{}), fd.Path+"[].")
		case ft == opclassParamType:
			fd.Type = "list of `name=value` strings"
		default:
			fd.Type, nested = kindName(ft, fd.Path)
		}
		out = append(out, fd)
		out = append(out, nested...)
	}
	return out
}

func kindName(t reflect.Type, path string) (string, []field) {
	switch t.Kind() {
	case reflect.String:
		return "string", nil
	case reflect.Bool:
		return "bool", nil
	case reflect.Int, reflect.Int64:
		return "integer", nil
	case reflect.Struct:
		return "object", fields(t, path+".")
	case reflect.Slice:
		e := t.Elem()
		for e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		if e.Kind() == reflect.Struct {
			return "list of objects", fields(e, path+"[].")
		}
		n, _ := kindName(e, path)
		return "list of " + n + "s", nil
	case reflect.Map:
		n, _ := kindName(t.Elem(), path)
		return "map of name to " + n, nil
	}
	panic(fmt.Sprintf("docgen: no name for %s at %s", t, path))
}

// notes are the hand-written remarks on fields: by operation and path, and
// by the Go type a key belongs to (Column, ForeignKey, ...), for the structs
// several operations share. An operation's own note wins.
type notes struct {
	Operations map[string]map[string]string `yaml:"operations"`
	Types      map[string]map[string]string `yaml:"types"`
}

func loadNotes() (notes, error) {
	data, err := text.ReadFile("text/fields.yaml")
	if err != nil {
		return notes{}, err
	}
	var n notes
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&n); err != nil {
		return notes{}, fmt.Errorf("text/fields.yaml: %w", err)
	}
	return n, nil
}

// prose returns the hand-written description of an operation.
func prose(kind string) (string, error) {
	data, err := text.ReadFile("text/operations/" + kind + ".md")
	if err != nil {
		return "", fmt.Errorf("docgen: operation %q has no description: write internal/docgen/text/operations/%s.md", kind, kind)
	}
	return strings.TrimSpace(string(data)), nil
}

// summary is the first sentence of an operation's description.
func summary(p string) string {
	first, _, _ := strings.Cut(p, "\n\n")
	first = strings.ReplaceAll(first, "\n", " ")
	if i := strings.Index(first, ". "); i >= 0 {
		first = first[:i+1]
	}
	return first
}

// annotate gives each field its note, and records which type notes were
// used (seen: "Column.name").
func annotate(fs []field, own map[string]string, all notes, seen map[string]bool) {
	for i := range fs {
		if n, ok := own[fs[i].Path]; ok {
			fs[i].Note = n
		} else {
			fs[i].Note = all.Types[fs[i].Owner][fs[i].Key]
		}
		seen[fs[i].Owner+"."+fs[i].Key] = true
	}
}

// operationFields lists an operation's fields with their notes. A note for a
// field the operation does not have is an error: the notes cannot outlive a
// field.
func operationFields(kind string, all notes, seen map[string]bool) ([]field, error) {
	t, ok := operations.OperationType(kind)
	if !ok {
		return nil, fmt.Errorf("docgen: no operation %q", kind)
	}
	fs := fields(t, "")
	own := all.Operations[kind]
	annotate(fs, own, all, seen)
	for _, p := range sortedKeys(own) {
		if !slices.ContainsFunc(fs, func(f field) bool { return f.Path == p }) {
			return nil, fmt.Errorf("docgen: text/fields.yaml has a note on %s.%s, which is no field of the operation", kind, p)
		}
	}
	return fs, nil
}

// checkTypeNotes refuses a type note on a key no operation has.
func checkTypeNotes(all notes, seen map[string]bool) error {
	for _, typ := range sortedKeys(all.Types) {
		for _, key := range sortedKeys(all.Types[typ]) {
			if !seen[typ+"."+key] {
				return fmt.Errorf("docgen: text/fields.yaml has a note on %s.%s, which is no field of the format", typ, key)
			}
		}
	}
	return nil
}

func fieldTable(b *strings.Builder, fs []field) {
	b.WriteString("| field | type | required | notes |\n|---|---|---|---|\n")
	for _, f := range fs {
		req := ""
		if f.Required {
			req = "**yes**"
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", f.Path, cell(f.Type), req, cell(f.Note))
	}
	b.WriteString("\n")
}

// example is one use of an operation in a file of examples/.
type example struct {
	file string // "examples/02_rename_email.yaml"
	item *yaml.Node
}

// readExamples finds every operation item in the migration files of dir, by
// operation name, in file order.
func readExamples(dir string) (map[string][]example, error) {
	var files []string
	for _, pat := range []string{"*.yaml", "*.yml", "*.json"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	out := map[string][]example{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read example: %w", err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		ops := mapValue(doc.Content[0], "operations")
		if ops == nil {
			continue
		}
		json := strings.HasSuffix(f, ".json")
		for _, item := range ops.Content {
			if item.Kind != yaml.MappingNode || len(item.Content) != 2 {
				continue
			}
			if json {
				blockStyle(item)
			}
			kind := item.Content[0].Value
			out[kind] = append(out[kind], example{file: "examples/" + filepath.Base(f), item: item})
		}
	}
	return out, nil
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// blockStyle drops JSON's flow style and quotes, so that an example taken
// from a .json file is shown as the YAML the other examples are.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

func renderItem(item *yaml.Node) (string, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	seq := &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{item}}
	if err := enc.Encode(seq); err != nil {
		return "", fmt.Errorf("render example: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return strings.TrimRight(buf.String(), "\n"), nil
}

const maxExamples = 3

func operationPages(files Files, ex map[string][]example) error {
	all, err := loadNotes()
	if err != nil {
		return err
	}
	for k := range all.Operations {
		if _, ok := operations.OperationType(k); !ok {
			return fmt.Errorf("docgen: text/fields.yaml has notes for %q, which is no operation", k)
		}
	}
	seen := map[string]bool{}
	var index strings.Builder
	index.WriteString(header)
	index.WriteString("# Operations\n\n")
	index.WriteString("Every operation a migration file can hold, one page each. The fields are read from the\n")
	index.WriteString("definitions the parser uses; **ext** marks online's own operations, which pgroll does not have.\n")
	index.WriteString("The file around them is described in [the file format](../file-format.md).\n\n")
	index.WriteString("| operation | | what it does |\n|---|---|---|\n")
	for _, kind := range operations.Names() {
		p, err := prose(kind)
		if err != nil {
			return err
		}
		fs, err := operationFields(kind, all, seen)
		if err != nil {
			return err
		}
		origin := "pgroll"
		if extOperations[kind] {
			origin = "**ext**"
		}
		fmt.Fprintf(&index, "| [`%s`](%s.md) | %s | %s |\n", kind, kind, origin, cell(summary(p)))

		var b strings.Builder
		b.WriteString(header)
		fmt.Fprintf(&b, "# %s\n\n", kind)
		if extOperations[kind] {
			b.WriteString("**ext**: an operation of online's own, not part of pgroll's format.\n\n")
		} else {
			b.WriteString("An operation of pgroll's format: a pgroll file that uses it runs unchanged.\n\n")
		}
		fmt.Fprintf(&b, "%s\n\n", p)
		b.WriteString("## Fields\n\n")
		b.WriteString("Required fields are marked; a field left out takes the default its note gives, or none.\n")
		b.WriteString("An unknown field is an error that names the file, the operation's position and the field.\n\n")
		fieldTable(&b, fs)
		b.WriteString("## Examples\n\n")
		uses := ex[kind]
		if len(uses) == 0 {
			b.WriteString("No file of [`examples/`](../../../examples) uses this operation yet.\n\n")
		}
		for i, u := range uses {
			if i == maxExamples {
				fmt.Fprintf(&b, "%d more in [`examples/`](../../../examples).\n\n", len(uses)-maxExamples)
				break
			}
			y, err := renderItem(u.item)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "From [`%s`](../../../%s), which the test suite starts, rolls back, starts again and completes:\n\n```yaml\n%s\n```\n\n", u.file, u.file, y)
		}
		b.WriteString("## See also\n\n- [All operations](README.md)\n- [The file format](../file-format.md)\n")
		files[filepath.Join(operationsDir, kind+".md")] = []byte(b.String())
	}
	index.WriteString("\n")
	files[filepath.Join(operationsDir, "README.md")] = []byte(index.String())
	return checkTypeNotes(all, seen)
}

func formatPage(files Files) error {
	all, err := loadNotes()
	if err != nil {
		return err
	}
	src, err := text.ReadFile("text/file-format.md")
	if err != nil {
		return err
	}
	tmpl, err := template.New("file-format").Parse(string(src))
	if err != nil {
		return fmt.Errorf("text/file-format.md: %w", err)
	}
	var ops strings.Builder
	ops.WriteString("| operation | fields (required in bold) | what it does |\n|---|---|---|\n")
	for _, kind := range operations.Names() {
		t, _ := operations.OperationType(kind)
		var names []string
		for _, f := range fields(t, "") {
			if strings.ContainsAny(f.Path, ".[") {
				continue
			}
			if f.Required {
				names = append(names, "**"+f.Path+"**")
			} else {
				names = append(names, "`"+f.Path+"`")
			}
		}
		p, err := prose(kind)
		if err != nil {
			return err
		}
		name := "[`" + kind + "`](operations/" + kind + ".md)"
		if extOperations[kind] {
			name += " **ext**"
		}
		fmt.Fprintf(&ops, "| %s | %s | %s |\n", name, strings.Join(names, ", "), cell(summary(p)))
	}
	var col strings.Builder
	cfs := fields(reflect.TypeOf(operations.Column{}), "")
	annotate(cfs, nil, all, map[string]bool{})
	fieldTable(&col, cfs)
	var b strings.Builder
	b.WriteString(header)
	if err := tmpl.Execute(&b, map[string]string{
		"Operations": ops.String(),
		"Column":     col.String(),
	}); err != nil {
		return fmt.Errorf("text/file-format.md: %w", err)
	}
	files[formatFile] = []byte(b.String())
	return nil
}
