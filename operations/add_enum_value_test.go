package operations

import (
	"strings"
	"testing"
)

func TestAddEnumValuePlans(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", enumFixture...)
	cases := []struct {
		name, ops string
		sql       string // "" when no statement is expected to differ
		labels    string
	}{
		{"at the end", "- add_enum_value: {enum: mood, value: ecstatic}",
			`ALTER TYPE "public"."mood" ADD VALUE IF NOT EXISTS 'ecstatic'`, "sad,ok,happy,ecstatic"},
		{"before", "- add_enum_value: {enum: mood, value: meh, before: ok}",
			`ALTER TYPE "public"."mood" ADD VALUE IF NOT EXISTS 'meh' BEFORE 'ok'`, "sad,meh,ok,happy"},
		{"after", "- add_enum_value: {enum: mood, value: \"it's fine\", after: ok}",
			`ALTER TYPE "public"."mood" ADD VALUE IF NOT EXISTS 'it''s fine' AFTER 'ok'`, "sad,ok,it's fine,happy"},
		{"first", "- add_enum_value: {enum: mood, value: awful, before: sad}",
			`ALTER TYPE "public"."mood" ADD VALUE IF NOT EXISTS 'awful' BEFORE 'sad'`, "awful,sad,ok,happy"},
		// After a rollback, which leaves the value, the same migration
		// starts again: the value stands where it was asked to.
		{"already there, where asked", "- add_enum_value: {enum: mood, value: ok, before: happy}",
			`ALTER TYPE "public"."mood" ADD VALUE IF NOT EXISTS 'ok' BEFORE 'happy'`, "sad,ok,happy"},
		{"already there, after", "- add_enum_value: {enum: mood, value: ok, after: sad}", "", "sad,ok,happy"},
		{"already there, anywhere", "- add_enum_value: {enum: mood, value: sad}", "", "sad,ok,happy"},
		{"mixed-case enum", "- add_enum_value: {enum: Mixed Case, value: b}",
			`ALTER TYPE "public"."Mixed Case" ADD VALUE IF NOT EXISTS 'b'`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, ns, err := compileYAML(t, s, publicOpts, c.ops)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "steps", len(p.Expand), 1)
			st := p.Expand[0]
			if c.sql != "" {
				eq(t, "sql", strings.Join(st.SQL, ";"), c.sql)
			}
			eq(t, "outside a transaction", st.NoTx, true)
			eq(t, "no undo", len(st.Undo), 0)
			if !strings.Contains(st.Do, "rollback cannot remove it") {
				t.Errorf("Do %q does not say that rollback leaves the value", st.Do)
			}
			if c.labels != "" {
				eq(t, "model", strings.Join(ns.Enums["mood"], ","), c.labels)
			}
		})
	}

	t.Run("to an enum created by the same migration", func(t *testing.T) {
		p, ns, err := compileYAML(t, s, publicOpts, `
- create_enum: {name: status, values: [new, done]}
- add_enum_value: {enum: status, value: doing, after: new}`)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "steps", len(p.Expand), 2)
		eq(t, "create first", p.Expand[0].NoTx, false)
		eq(t, "model", strings.Join(ns.Enums["status"], ","), "new,doing,done")
	})
}

func TestAddEnumValueErrors(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", enumFixture...)
	const kind = "add_enum_value"
	cases := []struct {
		name, ops string
		op        int
		field     string
		msg       string
	}{
		{"no enum", "- add_enum_value: {value: a}", 1, "enum", "is required"},
		{"missing enum", "- add_enum_value: {enum: nope, value: a}", 1, "enum", `enum "nope" does not exist`},
		{"not an enum", "- add_enum_value: {enum: dom, value: a}", 1, "enum", `enum "dom" does not exist`},
		{"enum dropped earlier", "- drop_enum: {name: unused}\n- add_enum_value: {enum: unused, value: a}", 2, "enum", "no longer in the new version"},
		{"no value", "- add_enum_value: {enum: mood}", 1, "value", "is required"},
		{"value too long", "- add_enum_value: {enum: mood, value: " + strings.Repeat("x", 64) + "}", 1, "value", "64 bytes"},
		{"before and after", "- add_enum_value: {enum: mood, value: a, before: ok, after: ok}", 1, "after", "not both"},
		{"unknown before", "- add_enum_value: {enum: mood, value: a, before: nope}", 1, "before", `no value "nope"`},
		{"unknown after", "- add_enum_value: {enum: mood, value: a, after: nope}", 1, "after", `no value "nope"`},
		{"already there, elsewhere", "- add_enum_value: {enum: mood, value: sad, after: happy}", 1, "value", "cannot move"},
		{"already there, before itself", "- add_enum_value: {enum: mood, value: ok, before: ok}", 1, "value", "cannot move"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := compileYAML(t, s, publicOpts, c.ops)
			checkCompileErr(t, err, c.op, kind, c.field, c.msg)
		})
	}
}
