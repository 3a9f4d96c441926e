package jsonschema

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/onlinepg/online/operations"
)

var update = flag.Bool("update", false, "rewrite migration.json from operations.JSONSchema")

func TestCommittedSchemaIsGenerated(t *testing.T) {
	gen, err := operations.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("migration.json", gen, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(gen, Migration) {
		t.Fatal("migration.json differs from operations.JSONSchema(): run go test ./jsonschema -update and commit it")
	}
}

func compile(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Migration))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("migration.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("migration.json")
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

// document is a migration file as JSON, as online's parser reads it.
func document(t *testing.T, name string, data []byte) any {
	t.Helper()
	m, err := operations.Parse(name, data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(m.Document))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestExamplesValidate(t *testing.T) {
	s := compile(t)
	files, _ := filepath.Glob("../examples/*")
	more, _ := filepath.Glob("../operations/testdata/valid/*")
	files = append(files, more...)
	if len(files) < 10 {
		t.Fatalf("found only %d example files", len(files))
	}
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.IsDir() {
			continue // examples/app is a program, not a migration
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(document(t, f, data)); err != nil {
			t.Errorf("%s does not validate: %v", f, err)
		}
	}
}

// TestSchemaRejects checks that the schema refuses what the format does.
func TestSchemaRejects(t *testing.T) {
	s := compile(t)
	for name, doc := range map[string]string{
		"unknown operation":      `{"operations": [{"rename_colum": {"table": "t", "from": "a", "to": "b"}}]}`,
		"two keys in one item":   `{"operations": [{"drop_table": {"name": "a"}, "drop_index": {"name": "b"}}]}`,
		"unknown field":          `{"operations": [{"rename_column": {"table": "t", "from": "a", "to": "b", "form": "x"}}]}`,
		"missing required field": `{"operations": [{"rename_column": {"table": "t", "from": "a"}}]}`,
		"no operations":          `{"operations": []}`,
		"wrong type":             `{"operations": [{"create_table": {"name": "t", "columns": {"name": "a"}}}]}`,
		"column without type":    `{"operations": [{"add_column": {"table": "t", "column": {"name": "a"}}}]}`,
	} {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(v); err == nil {
			t.Errorf("%s: accepted %s", name, doc)
		}
	}
}

// TestRequiredFieldsExist keeps the required lists of the schema generator
// in step with the structs: every name must be a yaml field of its type.
func TestRequiredFieldsExist(t *testing.T) {
	var schema struct {
		Defs map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(Migration, &schema); err != nil {
		t.Fatal(err)
	}
	n := 0
	for def, d := range schema.Defs {
		for _, r := range d.Required {
			n++
			if _, ok := d.Properties[r]; !ok {
				t.Errorf("$defs/%s requires %q, which is not one of its fields", def, r)
			}
		}
	}
	for _, op := range operations.Names() {
		if _, ok := schema.Defs[op]; !ok {
			t.Errorf("operation %s has no $defs entry", op)
		}
	}
	if n < 40 || reflect.DeepEqual(schema.Defs, nil) {
		t.Errorf("only %d required fields in the schema", n)
	}
}
