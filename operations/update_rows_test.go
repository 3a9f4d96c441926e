package operations

import (
	"errors"
	"strings"
	"testing"
)

var dataFixture = []string{
	`CREATE TABLE items (id bigint PRIMARY KEY, qty int NOT NULL, unit_cents int NOT NULL, total_cents int, status text, g int GENERATED ALWAYS AS (qty * 2) STORED)`,
	`CREATE TABLE pairs (a int, b int, note text, PRIMARY KEY (a, b))`,
	`CREATE TABLE nokey (v int)`,
	`CREATE TABLE parts (id int, region text, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region)`,
	`CREATE TABLE parts_eu PARTITION OF parts FOR VALUES IN ('eu')`,
	`CREATE TABLE parts_us PARTITION OF parts FOR VALUES IN ('us')`,
}

func TestUpdateRowsPlans(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", dataFixture...)

	p, _, err := compileYAML(t, s, publicOpts, `- update_rows: {table: items, set: {total_cents: "qty * unit_cents", status: "upper(status)"}, where: "total_cents IS NULL"}`)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "tasks", len(p.Backfill), 1)
	bf := p.Backfill[0]
	eq(t, "table", bf.Table, "items")
	eq(t, "key", bf.Key[0].Name+" "+bf.Key[0].Type, "id bigint")
	eq(t, "ops", bf.Ops[0], 1)
	// Sorted by column: a map has no order of its own.
	eq(t, "set", bf.Set[0].Column+"="+bf.Set[0].Expr+"; "+bf.Set[1].Column+"="+bf.Set[1].Expr, "status=(upper(status)); total_cents=(qty * unit_cents)")
	eq(t, "where", bf.Where, "(total_cents IS NULL)")
	eq(t, "data", bf.Data != nil && !bf.Data.Reversible(), true)
	eq(t, "no expand", len(p.Expand), 0)
	eq(t, "irreversible", len(p.IrreversibleData()), 1)
	out := p.String()
	for _, want := range []string{
		"-- data migration (update_rows, operation 1): the new values are in the table's own columns, which both versions read",
		`UPDATE "public"."items" SET "status" = (upper(status)), "total_cents" = (qty * unit_cents) WHERE (total_cents IS NULL);`,
		`-- IRREVERSIBLE: operation 1 (update_rows on "public"."items") has no down`,
		"online rollback --force",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}

	// With down: undone at rollback, before the schema, over down_where.
	p, _, err = compileYAML(t, s, publicOpts, `- update_rows: {table: items, set: {unit_cents: "unit_cents * 100"}, down: {unit_cents: "unit_cents / 100"}, where: "qty > 0", down_where: "qty > 0"}`)
	if err != nil {
		t.Fatal(err)
	}
	d := p.Backfill[0].Data
	eq(t, "reversible", d.Reversible(), true)
	eq(t, "down", d.Down[0].Column+"="+d.Down[0].Expr, "unit_cents=(unit_cents / 100)")
	eq(t, "down_where", d.DownWhere, "(qty > 0)")
	eq(t, "reversible is not listed", len(p.IrreversibleData()), 0)
	out = p.String()
	rb := out[strings.Index(out, "== rollback"):]
	want := `-- first, before anything else, operation 1's down, in batches by ("id"), each its own transaction:` + "\n" +
		`UPDATE "public"."items" SET "unit_cents" = (unit_cents / 100) WHERE (qty > 0);` + "\n" + `DROP SCHEMA IF EXISTS`
	if !strings.Contains(rb, want) {
		t.Errorf("rollback section lacks %q:\n%s", want, rb)
	}

	// A column renamed earlier in the migration: the expressions name the
	// new version's column, bound to the physical one.
	p, _, err = compileYAML(t, s, publicOpts, "- rename_column: {table: items, from: status, to: state}\n- update_rows: {table: items, set: {state: \"lower(state)\"}, where: \"state <> lower(state)\"}")
	if err != nil {
		t.Fatal(err)
	}
	bf = p.Backfill[0]
	eq(t, "renamed target", bf.Set[0].Column, "status")
	eq(t, "renamed expr", bf.Set[0].Expr, `(SELECT (lower(state)) FROM (SELECT "status" AS "state") AS "_online_in")`)
	eq(t, "renamed where", bf.Where, `(SELECT (state <> lower(state)) FROM (SELECT "status" AS "state") AS "_online_in")`)

	// A column added by the same migration (no up) can be filled.
	p, _, err = compileYAML(t, s, publicOpts, "- add_column: {table: items, column: {name: label, type: text, nullable: true}}\n- update_rows: {table: items, set: {label: \"'item ' || id\"}}")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "new column", p.Backfill[0].Set[0].Column, "label")
	// Rollback drops the column with its values: nothing to undo.
	eq(t, "new columns only", p.Backfill[0].Data.NewColumns, true)
	eq(t, "reversible without down", p.Backfill[0].Data.Reversible(), true)
	if out := p.String(); strings.Contains(out, "IRREVERSIBLE") || strings.Contains(out, "'s down") {
		t.Errorf("a fill of a new column needs no undo:\n%s", out)
	}

	// Composite key; a partitioned table is walked leaf by leaf.
	p, _, err = compileYAML(t, s, publicOpts, `- update_rows: {table: parts, set: {v: "v + 1"}}`)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "leaves", len(p.Backfill), 2)
	eq(t, "leaf", p.Backfill[0].Table+" of "+p.Backfill[0].Parent, "parts_eu of parts")
	eq(t, "composite key", len(p.Backfill[0].Key), 2)
	eq(t, "one irreversible line for two leaves", strings.Count(p.String(), "IRREVERSIBLE"), 1)
}

func TestUpdateRowsErrors(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", dataFixture...)
	cases := []struct {
		name, ops string
		op        int
		field     string
		msg       string
	}{
		{"no table", `- update_rows: {set: {qty: "1"}}`, 1, "table", "is required"},
		{"unknown table", `- update_rows: {table: nope, set: {qty: "1"}}`, 1, "table", "nope"},
		{"no set", `- update_rows: {table: items}`, 1, "set", "is required"},
		{"unknown column", `- update_rows: {table: items, set: {nope: "1"}}`, 1, "set.nope", "nope"},
		{"key column", `- update_rows: {table: items, set: {id: "id + 1"}}`, 1, "set.id", "part of the key"},
		{"composite key column", `- update_rows: {table: pairs, set: {b: "b + 1"}}`, 1, "set.b", "part of the key"},
		{"generated column", `- update_rows: {table: items, set: {g: "1"}}`, 1, "set.g", "generated column"},
		{"no key", `- update_rows: {table: nokey, set: {v: "1"}}`, 1, "table", "no primary key"},
		{"name in set unknown", `- update_rows: {table: items, set: {qty: "quantity + 1"}}`, 1, "set.qty", `column "quantity" does not exist`},
		{"name in where unknown", `- update_rows: {table: items, set: {qty: "1"}, where: "colour = 'red'"}`, 1, "where", `column "colour" does not exist`},
		{"name in down unknown", `- update_rows: {table: items, set: {qty: "1"}, down: {qty: "old_qty"}}`, 1, "down.qty", `column "old_qty" does not exist`},
		{"old name after rename", "- rename_column: {table: items, from: status, to: state}\n- update_rows: {table: items, set: {state: \"lower(status)\"}}", 2, "set.state", `column "status" does not exist`},
		{"dropped column", "- drop_column: {table: items, column: status}\n- update_rows: {table: items, set: {status: \"'x'\"}}", 2, "set.status", "no longer in the new version"},
		{"where and down without down_where", `- update_rows: {table: items, set: {qty: "qty + 1"}, where: "qty > 0", down: {qty: "qty - 1"}}`, 1, "down_where", "is required when both where and down"},
		{"down_where without down", `- update_rows: {table: items, set: {qty: "qty + 1"}, down_where: "true"}`, 1, "down_where", "only meaningful with down"},
		{"down of a new column", "- add_column: {table: items, column: {name: label, type: text, nullable: true}}\n- update_rows: {table: items, set: {label: \"'x'\"}, down: {label: \"NULL\"}}", 2, "down", "nothing for down"},
		{"created table", "- create_table: {name: fresh, columns: [{name: id, type: int, pk: true}, {name: v, type: int, nullable: true}]}\n- update_rows: {table: fresh, set: {v: \"1\"}}", 2, "table", "no rows to update"},
		{"rewrite before", "- alter_column: {table: items, column: total_cents, type: bigint}\n- update_rows: {table: items, set: {status: \"'x'\"}}", 2, "table", "also rewritten"},
		{"rewrite after", "- update_rows: {table: items, set: {status: \"'x'\"}}\n- alter_column: {table: items, column: status, up: \"upper(status)\", down: \"status\"}", 1, "table", "also rewritten"},
		{"add_column with up", "- update_rows: {table: items, set: {status: \"'x'\"}}\n- add_column: {table: items, column: {name: label, type: text, nullable: true}, up: \"status\"}", 1, "table", "also rewritten"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := compileYAML(t, s, publicOpts, c.ops)
			checkCompileErr(t, err, c.op, "update_rows", c.field, c.msg)
		})
	}
}

// TestUpdateRowsSQLFields proves each SQL field is exactly one expression
// (or predicate) at parse time: the error names file, operation and field.
func TestUpdateRowsSQLFields(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, body, field string }{
		{"empty expression", `{table: items, set: {qty: " "}}`, "set.qty"},
		{"second statement in set", `{table: items, set: {qty: "1; DROP TABLE items"}}`, "set.qty"},
		{"comma list in set", `{table: items, set: {qty: "1, 2"}}`, "set.qty"},
		{"clause in where", `{table: items, set: {qty: "1"}, where: "true) OR (true"}`, "where"},
		{"statement in where", `{table: items, set: {qty: "1"}, where: "true; DELETE FROM items"}`, "where"},
		{"subquery writes in down", `{table: items, set: {qty: "1"}, down: {qty: "(WITH d AS (DELETE FROM items RETURNING 1) SELECT 1)"}}`, "down.qty"},
		{"comment out the rest of down_where", `{table: items, set: {qty: "1"}, down: {qty: "2"}, down_where: "true --"}`, "down_where"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("bad.yaml", []byte("operations:\n  - update_rows: "+c.body+"\n"))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want *Error, got %v", err)
			}
			if e.File != "bad.yaml" || e.Op != 1 || e.Kind != "update_rows" || e.Field != c.field {
				t.Fatalf("got file %q op %d kind %q field %q (%v); want bad.yaml 1 update_rows %s", e.File, e.Op, e.Kind, e.Field, err, c.field)
			}
		})
	}
	// Unknown keys are refused like everywhere else.
	_, err := Parse("bad.yaml", []byte("operations:\n  - update_rows: {table: items, set: {qty: \"1\"}, wher: \"true\"}\n"))
	if err == nil || !strings.Contains(err.Error(), `"wher"`) {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestUpdateRowsInverse(t *testing.T) {
	t.Parallel()
	m, err := Parse("m.yaml", []byte(`operations:
  - update_rows: {table: items, set: {unit_cents: "unit_cents * 100"}, down: {unit_cents: "unit_cents / 100"}, where: "qty > 0", down_where: "qty > 0"}
  - update_rows: {table: items, set: {status: "upper(status)"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	rs := Invert(m, nil)
	inv := rs[0].Inverse["update_rows"].(map[string]any)
	eq(t, "inverse set", inv["set"].(map[string]string)["unit_cents"], "unit_cents / 100")
	eq(t, "inverse down", inv["down"].(map[string]string)["unit_cents"], "unit_cents * 100")
	eq(t, "inverse where", inv["where"], any("qty > 0"))
	eq(t, "inverse down_where", inv["down_where"], any("qty > 0"))
	eq(t, "no down: no inverse", rs[1].Inverse == nil, true)
	if !strings.Contains(rs[1].Reason, "without down") {
		t.Errorf("reason %q", rs[1].Reason)
	}
}
