package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onlinepg/online/jsonschema"
	"github.com/onlinepg/online/operations"
)

func TestLintCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clean := writeFile(t, dir, "clean.sql", "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n")
	bad := writeFile(t, dir, "bad.sql", "SET lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN age TYPE bigint;\n")
	broken := writeFile(t, dir, "broken.sql", "ALTER TABLEX users;\n")

	r := runCLI(t, "lint", clean)
	if r.code != 0 || !strings.Contains(r.stdout, "0 findings") {
		t.Fatalf("clean: %+v", r)
	}
	r = runCLI(t, "lint", bad, clean)
	if r.code != 1 || !strings.Contains(r.stdout, "bad.sql:2:1: changing-column-type:") || !strings.Contains(r.stdout, "instead: alter_column") {
		t.Fatalf("findings: %+v", r)
	}
	r = runCLI(t, "lint", "--json", bad)
	var rep struct {
		Findings []struct {
			Rule string `json:"rule"`
			Line int    `json:"line"`
		} `json:"findings"`
	}
	if r.code != 1 || json.Unmarshal([]byte(r.stdout), &rep) != nil || len(rep.Findings) != 1 || rep.Findings[0].Rule != "changing-column-type" || rep.Findings[0].Line != 2 {
		t.Fatalf("--json: %+v", r)
	}
	r = runCLI(t, "lint", broken)
	if r.code != 2 || !strings.Contains(r.stderr, "broken.sql: line 1, column 7") || r.stdout != "" {
		t.Fatalf("unreadable: %+v", r)
	}
	r = runCLI(t, "lint", filepath.Join(dir, "missing.sql"))
	if r.code != 2 {
		t.Fatalf("missing file: %+v", r)
	}
}

func TestConvertCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := writeFile(t, dir, "change.sql", "ALTER TABLE users ADD COLUMN bio text;\nVACUUM FULL users;\nALTER TABLE users RENAME COLUMN email TO mail;\n")
	r := runCLI(t, "convert", in)
	if r.code != 0 || strings.Count(r.stdout, "# file: change_0") != 3 || !strings.Contains(r.stdout, "not converted, line 2") {
		t.Fatalf("stdout: %+v", r)
	}
	out := filepath.Join(dir, "out", "m.yaml")
	r = runCLI(t, "convert", in, "-o", out)
	if r.code != 0 {
		t.Fatalf("-o: %+v", r)
	}
	for _, name := range []string{"m_01.yaml", "m_02.yaml", "m_03.yaml"} {
		if _, err := operations.ParseFile(filepath.Join(dir, "out", name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	mig := t.TempDir()
	writeFile(t, mig, "000002_rename.up.sql", "ALTER TABLE users RENAME COLUMN name TO full_name;\n")
	writeFile(t, mig, "000002_rename.down.sql", "ALTER TABLE users RENAME COLUMN full_name TO name;\n")
	writeFile(t, mig, "000010_index.up.sql", "CREATE INDEX CONCURRENTLY users_name ON users (full_name);\n")
	writeFile(t, mig, "000001_users.up.sql", "CREATE TABLE users (id bigint PRIMARY KEY, name text);\n")
	outDir := filepath.Join(dir, "converted")
	r = runCLI(t, "convert", mig, "-o", outDir)
	if r.code != 0 {
		t.Fatalf("dir: %+v", r)
	}
	entries, _ := os.ReadDir(outDir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "000001_users.yaml 000002_rename.yaml 000010_index.yaml" {
		t.Fatalf("files %v; stdout %s", names, r.stdout)
	}
	if r := runCLI(t, "convert", mig); r.code != 2 || !strings.Contains(r.stderr, "needs -o") {
		t.Fatalf("dir without -o: %+v", r)
	}
	bad := writeFile(t, dir, "bad.sql", "ALTER TABLEX users;")
	if r := runCLI(t, "convert", bad); r.code != 2 || !strings.Contains(r.stderr, "bad.sql: line 1, column 7") {
		t.Fatalf("bad SQL: %+v", r)
	}
}

func TestSchemaCLI(t *testing.T) {
	t.Parallel()
	r := runCLI(t, "schema")
	if r.code != 0 || !bytes.Equal([]byte(r.stdout), jsonschema.Migration) {
		t.Fatalf("online schema differs from jsonschema/migration.json (code %d)", r.code)
	}
}
