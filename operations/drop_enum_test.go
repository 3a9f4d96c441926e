package operations

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/schema"
)

func TestDropEnumPlans(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", enumFixture...)

	t.Run("unused", func(t *testing.T) {
		p, ns, err := compileYAML(t, s, publicOpts, "- drop_enum: {name: unused}")
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "nothing at start", len(p.Expand)+len(p.Finish), 0)
		eq(t, "contract", strings.Join(allSQL(p.Contract), ";"), `DROP TYPE "public"."unused"`)
		_, ok := ns.Enums["unused"]
		eq(t, "model", ok, false)
	})

	t.Run("after the column that uses it is dropped", func(t *testing.T) {
		p, _, err := compileYAML(t, s, publicOpts, "- drop_column: {table: feelings, column: m}\n- drop_enum: {name: mood}")
		if err != nil {
			t.Fatal(err)
		}
		stmts := allSQL(p.Contract)
		col := slicesIndex(stmts, `ALTER TABLE "public"."feelings" DROP COLUMN "m"`)
		typ := slicesIndex(stmts, `DROP TYPE "public"."mood"`)
		if col < 0 || typ < col {
			t.Fatalf("the column must go first:\n%s", strings.Join(stmts, "\n"))
		}
	})

	t.Run("after the table that uses it is dropped", func(t *testing.T) {
		if _, _, err := compileYAML(t, s, publicOpts, "- drop_table: {name: paints}\n- drop_enum: {name: color}"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("the previous version's views do not count", func(t *testing.T) {
		// Views of the previous version schema depend on the enum through
		// their columns; complete drops that schema first.
		s, _ := catalog(t, "public", `CREATE TYPE unused AS ENUM ('x')`, `CREATE TABLE t (id int PRIMARY KEY, u unused)`,
			`CREATE SCHEMA public_v1`, `CREATE VIEW public_v1.t AS SELECT id, u FROM public.t`, `CREATE SCHEMA elsewhere`, `CREATE VIEW elsewhere.t AS SELECT id, u FROM public.t`)
		opts := Options{Schema: "public", StateSchema: "online", Parent: "public_v1"}
		_, _, err := compileYAML(t, s, opts, "- drop_column: {table: t, column: u}\n- drop_enum: {name: unused}")
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("got %v; want the view of schema elsewhere named", err)
		}
		checkErr(t, e, 2, "drop_enum", "name", "column u of view elsewhere.t")
		if strings.Contains(e.Error(), "public_v1") {
			t.Errorf("%v names the previous version's view", e)
		}
	})
}

func TestDropEnumErrors(t *testing.T) {
	t.Parallel()
	s, _ := catalog(t, "public", enumFixture...)
	const kind = "drop_enum"
	cases := []struct {
		name, ops string
		op        int
		field     string
		msg       string
	}{
		{"no name", "- drop_enum: {}", 1, "name", "is required"},
		{"missing", "- drop_enum: {name: nope}", 1, "name", `enum "nope" does not exist`},
		{"a domain", "- drop_enum: {name: dom}", 1, "name", "does not exist"},
		{"dropped twice", "- drop_enum: {name: unused}\n- drop_enum: {name: unused}", 2, "name", "no longer in the new version"},
		{"created by the same migration", "- create_enum: {name: status, values: [a]}\n- drop_enum: {name: status}", 2, "name", "created by this migration"},
		{"used by a column", "- drop_enum: {name: mood}", 1, "name", `column "m" of table "feelings" uses enum "mood"`},
		{"used by a renamed column", "- rename_column: {table: feelings, from: m, to: feeling}\n- drop_enum: {name: mood}", 2, "name", `column "feeling"`},
		{"used by an array column", "- drop_enum: {name: color}", 1, "name", `column "colors" of table "paints"`},
		{"used by a mixed-case name", `- drop_enum: {name: "Mixed Case"}`, 1, "name", `column "v" of table "mixed"`},
		{"used by a function", "- drop_enum: {name: weather}", 1, "name", "function forecast(weather)"},
		{"used by a column added earlier", "- add_column: {table: feelings, column: {nullable: true, name: w, type: weather}}\n- drop_enum: {name: weather}", 2, "name", `column "w" of table "feelings"`},
		{"used by a column altered to it earlier", "- alter_column: {table: feelings, column: note, type: public.unused, up: \"'x'\", down: \"'x'\"}\n- drop_enum: {name: unused}", 2, "name", `column "note"`},
		{"converted away by the same migration", "- alter_column: {table: feelings, column: m, type: text, up: m::text, down: m::mood}\n- drop_enum: {name: mood}", 2, "name", "dropped only at the end of complete"},
		{"its column dropped later", "- drop_enum: {name: mood}\n- drop_column: {table: feelings, column: m}", 1, "name", `column "m"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := compileYAML(t, s, publicOpts, c.ops)
			checkCompileErr(t, err, c.op, kind, c.field, c.msg)
		})
	}
}

// TestDropEnumOtherSchema: format_type qualifies a type that is not on the
// search path; the check still finds the column.
func TestDropEnumOtherSchema(t *testing.T) {
	t.Parallel()
	conn := pgtest.Connect(t, pgtest.NewDB(t))
	pgtest.Exec(t, conn, `CREATE SCHEMA app`, `CREATE TYPE app.mood AS ENUM ('a')`, `CREATE TABLE app.t (id int PRIMARY KEY, m app.mood)`)
	s, err := schema.Read(context.Background(), conn, "app")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "type as read", s.Tables["t"].Column("m").Type, "app.mood")
	_, _, err = compileYAML(t, s, Options{Schema: "app", StateSchema: "online"}, "- drop_enum: {name: mood}")
	checkCompileErr(t, err, 1, "drop_enum", "name", `column "m" of table "t"`)
}

func TestTypeIsNamed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		typ  string
		want bool
	}{
		{"mood", true},
		{"MOOD", true},
		{"mood[]", true},
		{"mood[][]", true},
		{"mood[3]", true},
		{"mood ARRAY", true},
		{"public.mood", true},
		{`"public"."mood"`, true},
		{`public."mood"[]`, true},
		{"app.mood", false},
		{`"Mood"`, false},
		{"moods", false},
		{"text", false},
		{"varchar(255)", false},
		{"timestamp with time zone", false},
		{`"mood`, false},
		{"", false},
	}
	for _, c := range cases {
		if got := typeIsNamed(c.typ, "public", "mood"); got != c.want {
			t.Errorf("typeIsNamed(%q) = %v, want %v", c.typ, got, c.want)
		}
	}
	eq(t, "quoted mixed case", typeIsNamed(`"Mixed Case"`, "public", "Mixed Case"), true)
	eq(t, "quote inside", typeIsNamed(`"a""b"`, "public", `a"b`), true)
}
