package operations

import (
	"errors"
	"strings"
	"testing"

	"github.com/onlinepg/online/internal/sqllex"
)

// genCatalogDDL: a table with a key, a quoted input and a real generated
// column, and a table without a key. The catalog does not know whether a
// table has rows, so an existing table is always taken as having some.
const genCatalogDDL = `CREATE TABLE items (id int PRIMARY KEY, "Price" numeric NOT NULL, qty int, label text, doubled int GENERATED ALWAYS AS (qty * 2) STORED);
CREATE TABLE nokey (a int, b text)`

func TestGeneratedColumnPlan(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", genCatalogDDL)
	p, model, err := compileYAML(t, s, publicOpts, `- add_column: {table: items, column: {nullable: true, name: total, type: numeric, generated: {expression: '"Price" * qty'}}}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Expand) != 1 {
		t.Fatalf("expand has %d steps, want 1 (column and trigger in one transaction)", len(p.Expand))
	}
	sql := strings.Join(p.Expand[0].SQL, ";\n")
	for _, want := range []string{
		`ALTER TABLE "public"."items" ADD COLUMN "total" numeric;`,
		`CREATE TRIGGER "_online_gen_total"` + "\n" + `  BEFORE INSERT OR UPDATE OF "total", "Price", "qty" ON "public"."items"`,
		`CREATE FUNCTION "public"."_online_gen_items_total"() RETURNS trigger`,
		`"Price" numeric := "_online_row"."Price";`,
		`GENERATED ALWAYS AS ("Price" * qty) STORED`,
	} {
		if !strings.Contains(sql, want) {
			t.Errorf("expand lacks %q:\n%s", want, sql)
		}
	}
	if strings.Contains(sql, `ADD COLUMN "total" numeric GENERATED`) {
		t.Errorf("expand adds a real generated column, which rewrites the table:\n%s", sql)
	}
	if len(p.Backfill) != 1 || p.Backfill[0].Set[0].Column != "total" || p.Backfill[0].Set[0].Expr != `("Price" * qty)` || p.Backfill[0].Key[0].Name != "id" {
		t.Errorf("backfill %+v, want total = (\"Price\" * qty) by id", p.Backfill)
	}
	fin := strings.Join(allSQL(p.Finish), ";\n")
	for _, want := range []string{
		`ADD CONSTRAINT "_online_gen_total" CHECK ("total" IS NOT DISTINCT FROM CAST(("Price" * qty) AS numeric)) NOT VALID`,
		`VALIDATE CONSTRAINT "_online_gen_total"`,
	} {
		if !strings.Contains(fin, want) {
			t.Errorf("finish lacks %q:\n%s", want, fin)
		}
	}
	undo := strings.Join(p.Expand[0].Undo, ";\n")
	for _, want := range []string{`DROP TRIGGER IF EXISTS "_online_gen_total"`, `DROP FUNCTION IF EXISTS "public"."_online_gen_items_total"()`, `DROP COLUMN IF EXISTS "total"`} {
		if !strings.Contains(undo, want) {
			t.Errorf("undo lacks %q:\n%s", want, undo)
		}
	}
	if len(p.Contract) != 0 {
		t.Errorf("contract %+v, want nothing: the column, its trigger and check stay", p.Contract)
	}
	if c := model.Table("items").Column("total"); c == nil || !c.Generated {
		t.Errorf("the model's column %+v should be generated", c)
	}
}

// TestGeneratedColumnNames: object names stay within 63 bytes.
func TestGeneratedColumnNames(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("t", 60)
	col := strings.Repeat("c", 63)
	s, _ := catalog(t, "public", `CREATE TABLE `+long+` (id int PRIMARY KEY, a int)`)
	p, _, err := compileYAML(t, s, publicOpts, "- add_column: {table: "+long+", column: {nullable: true, name: "+col+", type: int, generated: {expression: a + 1}}}")
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range append(allSQL(p.Expand), allSQL(p.Finish)...) {
		for _, tok := range sqllex.Lex(stmt) {
			if tok.IsID && strings.HasPrefix(tok.Name, "_online_gen") && len(tok.Name) > 63 {
				t.Errorf("name %q is %d bytes", tok.Name, len(tok.Name))
			}
		}
	}
}

func TestGeneratedColumnRefused(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", genCatalogDDL)
	cases := []struct{ name, ops, field, msg string }{
		{"reads itself", `- add_column: {table: items, column: {nullable: true, name: total, type: int, generated: {expression: total + 1}}}`,
			"column.generated.expression", "reads the column"},
		{"reads a generated column", `- add_column: {table: items, column: {nullable: true, name: total, type: int, generated: {expression: doubled + 1}}}`,
			"column.generated.expression", "a generated column"},
		{"reads a renamed column", "- rename_column: {table: items, from: qty, to: quantity}\n- add_column: {table: items, column: {nullable: true, name: total, type: int, generated: {expression: quantity + 1}}}",
			"column.generated.expression", "renames or rewrites"},
		{"no key to walk", `- add_column: {table: nokey, column: {nullable: true, name: c, type: int, generated: {expression: a + 1}}}`,
			"table", "primary key"},
		{"up with generated", `- add_column: {table: items, up: "1", column: {name: total, type: int, generated: {expression: qty + 1}}}`,
			"up", "remove up"},
		{"rewrite an input afterwards", "- add_column: {table: items, column: {nullable: true, name: total, type: int, generated: {expression: qty + 1}}}\n- alter_column: {table: items, column: qty, type: bigint}",
			"column", "generated column"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := compileYAML(t, s, publicOpts, tc.ops)
			var e *Error
			if !errors.As(err, &e) || e.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want one on field %q containing %q", err, tc.field, tc.msg)
			}
		})
	}
}
