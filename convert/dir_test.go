package convert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onlinepg/online/operations"
)

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func outNames(outs []Output) string {
	var n []string
	for _, o := range outs {
		n = append(n, o.Name)
	}
	return strings.Join(n, " ")
}

// TestDirOrder reads each tool's files in the order the tool applies them
// (numeric versions, not file-name order) and only their up part.
func TestDirOrder(t *testing.T) {
	goose := t.TempDir()
	write(t, goose, "20240110_b.sql", "-- +goose Up\nALTER TABLE users ADD COLUMN b text;\n-- +goose Down\nALTER TABLE users DROP COLUMN b;\n")
	write(t, goose, "9_a.sql", "-- +goose Up\nALTER TABLE users ADD COLUMN a text;\n-- +goose Down\nALTER TABLE users DROP COLUMN a;\n")
	write(t, goose, "README.md", "not a migration")
	outs, err := Dir(goose)
	if err != nil {
		t.Fatal(err)
	}
	if outNames(outs) != "9_a 20240110_b" {
		t.Fatalf("goose order: %s", outNames(outs))
	}
	for _, o := range outs {
		if strings.Contains(string(o.YAML), "drop_column") {
			t.Fatalf("the Down section was converted:\n%s", o.YAML)
		}
	}

	flyway := t.TempDir()
	write(t, flyway, "V1_10__c.sql", "ALTER TABLE users ADD COLUMN c text;")
	write(t, flyway, "V1_2__b.sql", "ALTER TABLE users ADD COLUMN b text;")
	write(t, flyway, "V1__a.sql", "CREATE TABLE users (id bigint PRIMARY KEY);")
	if outs, err = Dir(flyway); err != nil || outNames(outs) != "V1_a V1_2_b V1_10_c" {
		t.Fatalf("flyway order: %s %v", outNames(outs), err)
	}

	empty := t.TempDir()
	write(t, empty, "notes.txt", "x")
	if _, err := Dir(empty); err == nil || !strings.Contains(err.Error(), "no golang-migrate") {
		t.Fatalf("empty dir: %v", err)
	}
}

func TestNoTransactionNote(t *testing.T) {
	outs, err := File("v.sql", []byte("VACUUM FULL users;"))
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 1 || !outs[0].Raw || !strings.Contains(string(outs[0].YAML), "cannot run inside a transaction") {
		t.Fatalf("got %+v", outs)
	}
}

// TestConvertLintCorpus converts every SQL file of lint's corpus (120
// statements of many kinds) and parses each result with online's parser:
// no statement may crash convert or yield a file online refuses to read.
func TestConvertLintCorpus(t *testing.T) {
	files, _ := filepath.Glob("../lint/testdata/corpus/*.sql")
	if len(files) < 10 {
		t.Fatalf("found %d corpus files", len(files))
	}
	raw, converted := 0, 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		outs, err := File(f, src)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, o := range outs {
			m, err := operations.Parse(o.Name+".yaml", o.YAML)
			if err != nil {
				t.Fatalf("%s: part %s does not parse: %v\n%s", f, o.Name, err, o.YAML)
			}
			if o.Raw {
				raw += len(o.Skipped)
			} else {
				converted += len(m.Operations)
			}
		}
	}
	t.Logf("%d operations converted, %d statements kept as sql", converted, raw)
}
