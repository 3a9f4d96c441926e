package sqlsrc

import (
	"testing"
)

func TestParsePositionsAndDeparse(t *testing.T) {
	src := "-- a comment\nCREATE TABLE t (a int);\n\n  /* block */ ALTER TABLE t ALTER COLUMN a TYPE bigint USING a::bigint + 1;\n"
	f, err := Parse("x.sql", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Statements) != 2 {
		t.Fatalf("got %d statements", len(f.Statements))
	}
	if s := f.Statements[1]; s.Line != 4 || s.Col != 15 {
		t.Fatalf("second statement at %d:%d, want 4:15", s.Line, s.Col)
	}
	cmd := f.Statements[1].Node.GetAlterTableStmt().Cmds[0].GetAlterTableCmd()
	def := cmd.Def.GetColumnDef()
	typ, err := Type(def.TypeName)
	if err != nil || typ != "bigint" {
		t.Fatalf("type %q %v", typ, err)
	}
	expr, err := Expr(def.RawDefault)
	if err != nil || expr != "a::bigint + 1" {
		t.Fatalf("expr %q %v", expr, err)
	}
	if refs := ColumnRefs(def.RawDefault); len(refs) != 1 || refs[0] != "a" {
		t.Fatalf("refs %v", refs)
	}
}

func TestGooseSections(t *testing.T) {
	src := "-- +goose Up\n-- +goose NO TRANSACTION\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- +goose Down\nDROP INDEX i;\n"
	f, err := Parse("20240101_x.sql", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if f.Tool != Goose || f.InTransaction || len(f.Statements) != 1 || f.Statements[0].Line != 3 {
		t.Fatalf("got %+v", f)
	}
	f, err = Parse("1_x.up.sql", []byte("CREATE INDEX CONCURRENTLY i ON t (a); SELECT 1;"))
	if err != nil || f.Tool != GolangMigrate || !f.InTransaction {
		t.Fatalf("golang-migrate: %+v %v", f, err)
	}
}

func TestParseErrorHasPosition(t *testing.T) {
	_, err := Parse("bad.sql", []byte("SELECT 1;\nALTER TABLEX t;"))
	if err == nil || err.Error() != `parse bad.sql: line 2, column 7: syntax error at or near "TABLEX"` {
		t.Fatalf("got %v", err)
	}
}
