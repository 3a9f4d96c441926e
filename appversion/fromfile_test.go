package appversion_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/onlinepg/online/appversion"
	"github.com/onlinepg/online/operations"
)

// TestFromFileNamesAsOnline: FromFile names the version a file publishes
// the way online does (issue 22): version_schema first, then name, then
// the file name; a file that is not there gives its file name.
func TestFromFileNamesAsOnline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct{ file, body, want string }{
		{"vs.yaml", "version_schema: v2\noperations:\n  - create_table: { name: t, columns: [{ name: id, type: int, pk: true }] }\n", "public_v2"},
		{"03_x.yaml", "name: add_things\noperations:\n  - create_table: { name: t, columns: [{ name: id, type: int, pk: true }] }\n", "public_add_things"},
		{"04_y.json", `{"name": "n4", "version_schema": "Release 4", "operations": [{"create_table": {"name": "t", "columns": [{"name": "id", "type": "int", "pk": true}]}}]}`, "public_Release 4"},
		{"05_plain.yml", "operations:\n  - create_table: { name: t, columns: [{ name: id, type: int, pk: true }] }\n", "public_05_plain"},
	} {
		p := filepath.Join(dir, c.file)
		if err := os.WriteFile(p, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		got := appversion.FromFile(p).SchemaName()
		m, err := operations.ParseFile(p)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if engine := operations.VersionSchemaName("public", m.VersionSchema); got != c.want || got != engine {
			t.Fatalf("%s: FromFile gives %q, want %q (online publishes %q)", c.file, got, c.want, engine)
		}
	}
	if got := appversion.FromFile("migrations/02_rename_email.yaml").SchemaName(); got != "public_02_rename_email" {
		t.Fatalf("a file that is not there: %q", got)
	}
}
