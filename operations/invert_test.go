package operations

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/onlinepg/online/schema"
)

func TestInvert(t *testing.T) {
	t.Parallel()
	m, err := Parse("07_mixed.yaml", []byte(`operations:
  - create_table: { name: tags, columns: [{ name: id, type: int, pk: true }] }
  - add_column: { table: users, column: { name: nick, type: text, nullable: true } }
  - rename_column: { table: users, from: email, to: mail }
  - alter_column: { table: users, column: score, type: bigint, up: score::bigint, down: score::int, default: "0" }
  - create_index: { table: users, name: users_mail_idx, columns: [mail] }
  - sql: { up: CREATE EXTENSION IF NOT EXISTS pg_trgm, down: DROP EXTENSION pg_trgm }
  - drop_column: { table: users, column: legacy }
`))
	if err != nil {
		t.Fatal(err)
	}
	def := "1"
	before := &schema.Schema{Name: "public", Tables: map[string]*schema.Table{"users": {Name: "users", Physical: "users",
		Columns: []*schema.Column{
			{Name: "id", Physical: "id", Type: "integer"},
			{Name: "email", Physical: "email", Type: "text", Nullable: true},
			{Name: "score", Physical: "score", Type: "integer", Nullable: true, Default: &def},
			{Name: "legacy", Physical: "legacy", Type: "text", Nullable: true},
		}, PrimaryKey: []string{"id"}, Indexes: map[string]*schema.Index{}, Constraints: map[string]*schema.Constraint{}}},
		Indexes: map[string]string{}, Enums: map[string][]string{}, EnumUses: map[string][]schema.TypeUse{}, Types: map[string]string{}, Relations: map[string]bool{"users": true}}

	rs := Invert(m, before)
	want := []string{
		`{"drop_table":{"name":"tags"}}`,
		`{"drop_column":{"column":"nick","table":"users"}}`,
		`{"rename_column":{"from":"mail","table":"users","to":"email"}}`,
		`{"alter_column":{"column":"score","default":"1","down":"score::bigint","table":"users","type":"integer","up":"score::int"}}`,
		`{"drop_index":{"name":"users_mail_idx"}}`,
		`{"sql":{"down":"CREATE EXTENSION IF NOT EXISTS pg_trgm","up":"DROP EXTENSION pg_trgm"}}`,
		``,
	}
	expectInverses(t, rs, want)
	if rs[6].Reason != "drops a column: its data is gone" {
		t.Fatalf("drop_column reason: %q", rs[6].Reason)
	}
	_, _, err = InverseDocument(m, before, "revert_07")
	if err == nil || !strings.Contains(err.Error(), "operation 7 (drop_column): drops a column") {
		t.Fatalf("InverseDocument: %v", err)
	}

	// Without the model from before, a type change cannot be undone; the
	// inverse of the rest, in reverse order, parses as a migration.
	m.Operations = m.Operations[:6]
	if rs := Invert(m, nil); rs[3].Inverse != nil || !strings.Contains(rs[3].Reason, "before the migration is not recorded") {
		t.Fatalf("alter_column without a model: %+v", rs[3])
	}
	doc, _, err := InverseDocument(m, before, "revert_07")
	if err != nil {
		t.Fatal(err)
	}
	inv, err := Parse("revert", doc)
	if err != nil || len(inv.Operations) != 6 || kindOf(inv.Operations[0]) != "sql" || kindOf(inv.Operations[5]) != "drop_table" {
		t.Fatalf("inverse document %s: %v", doc, err)
	}
}

// TestEveryOperationInverts keeps revert from answering "revert does not
// know this operation" for an operation of the format: each registered
// type must say, in its own file, what undoes it or why nothing can.
func TestEveryOperationInverts(t *testing.T) {
	t.Parallel()
	for _, name := range Names() {
		op := registry[name]()
		inv, ok := op.(inverter)
		if !ok {
			t.Errorf("%s (%T) has no invert method", name, op)
			continue
		}
		if got, reason := inv.invert(nil); got == nil && reason == "" {
			t.Errorf("%s: invert of an empty operation gives neither an inverse nor a reason", name)
		}
	}
}

// TestInvertCreateConstraint: a constraint is dropped again through the
// format's drop operations, its up becoming their down; one over
// expressions only has no columns to drop it by.
func TestInvertCreateConstraint(t *testing.T) {
	t.Parallel()
	m, err := Parse("08_constraints.yaml", []byte(`operations:
  - create_constraint: { table: t, name: qty_positive, type: check, columns: [Qty], check: '"Qty" > 0', up: { Qty: 'greatest("Qty", 1)' }, down: { Qty: '"Qty"' } }
  - create_constraint: { table: t, name: a_b_key, type: unique, columns: [a, b] }
  - create_constraint: { table: t, name: no_overlap, type: exclude, exclude: { index_method: gist, elements: "during WITH &&" } }
`))
	if err != nil {
		t.Fatal(err)
	}
	rs := Invert(m, nil)
	want := []string{
		`{"drop_constraint":{"down":"greatest(\"Qty\", 1)","name":"qty_positive","table":"t","up":"\"Qty\""}}`,
		`{"drop_multicolumn_constraint":{"down":{"a":"\"a\"","b":"\"b\""},"name":"a_b_key","table":"t","up":{"a":"\"a\"","b":"\"b\""}}}`,
		``,
	}
	expectInverses(t, rs, want)
	if !strings.Contains(rs[2].Reason, "names no columns") {
		t.Fatalf("exclusion over expressions: reason %q", rs[2].Reason)
	}
}

// expectInverses compares each inverse, as JSON, with want ("" for none).
func expectInverses(t *testing.T, rs []Reversal, want []string) {
	t.Helper()
	for i, r := range rs {
		got := ""
		if r.Inverse != nil {
			b, _ := json.Marshal(r.Inverse)
			got = string(b)
		}
		if got != want[i] {
			t.Fatalf("operation %d (%s): inverse %s, want %s (reason %q)", r.Op, r.Kind, got, want[i], r.Reason)
		}
	}
}
