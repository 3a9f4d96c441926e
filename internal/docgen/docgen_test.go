package docgen

import (
	"strings"
	"testing"

	"github.com/onlinepg/online/operations"
)

// A note on a field that does not exist would outlive the field: refused.
func TestNoteOnMissingFieldRefused(t *testing.T) {
	t.Parallel()
	_, err := operationFields("rename_column", notes{Operations: map[string]map[string]string{"rename_column": {"form": "a typo"}}}, map[string]bool{})
	if err == nil || !strings.Contains(err.Error(), "rename_column.form") {
		t.Fatalf("want an error naming rename_column.form, got %v", err)
	}
	fs, err := operationFields("rename_column", notes{Operations: map[string]map[string]string{"rename_column": {"from": "the old name"}}}, map[string]bool{})
	if err != nil {
		t.Fatal(err)
	}
	if fs[1].Path != "from" || fs[1].Note != "the old name" || !fs[1].Required {
		t.Fatalf("from: %+v", fs[1])
	}
}

// Every registered operation has its prose, and the committed notes name
// real fields only.
func TestEveryOperationDescribed(t *testing.T) {
	t.Parallel()
	all, err := loadNotes()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, kind := range operations.Names() {
		if _, err := prose(kind); err != nil {
			t.Error(err)
		}
		if _, err := operationFields(kind, all, seen); err != nil {
			t.Error(err)
		}
	}
	if err := checkTypeNotes(all, seen); err != nil {
		t.Error(err)
	}
	// A type note on a key no struct of that type has is refused too.
	all.Types["Column"]["nulable"] = "a typo"
	if err := checkTypeNotes(all, seen); err == nil || !strings.Contains(err.Error(), "Column.nulable") {
		t.Errorf("want an error naming Column.nulable, got %v", err)
	}
}

// The fields are the parser's: nested structs flattened with their paths,
// required ones from the JSON Schema's list.
func TestFieldsWalkTheParserTags(t *testing.T) {
	t.Parallel()
	typ, _ := operations.OperationType("add_column")
	got := map[string]field{}
	for _, f := range fields(typ, "") {
		got[f.Path] = f
	}
	for path, required := range map[string]bool{
		"table": true, "column": true, "up": false, "column.name": true, "column.nullable": false,
		"column.references.table": true, "column.generated.identity.sequence_options": false,
	} {
		f, ok := got[path]
		if !ok {
			t.Errorf("no field %s", path)
			continue
		}
		if f.Required != required {
			t.Errorf("%s: required %v, want %v", path, f.Required, required)
		}
	}
}

func TestCellEscapes(t *testing.T) {
	t.Parallel()
	if got := cell("a|b\nc"); got != `a\|b c` {
		t.Fatalf("cell: %q", got)
	}
}
