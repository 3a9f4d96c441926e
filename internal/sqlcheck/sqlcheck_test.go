package sqlcheck

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

type kind struct {
	name  string
	check func(string) error
	ok    []string
	bad   []string
}

// Hostile forms that every kind must refuse: a second statement, a comment
// that hides the rest of the line, an unterminated quote, a NUL byte.
var hostileAll = []string{
	"1; drop table x",
	"1; commit",
	"(select 1); drop table x",
	"int) ; select (1",
	"1 -- hide the rest",
	"1 /* unterminated",
	"1 $$ unterminated dollar",
	"$x$ 1 $x$; drop table x",
	"'unterminated",
	"1\x00; drop table x",
	`'a\' || ';drop table x;--'`,
	`N'a\' || ';drop table x;--'`,
	"",
	"   ",
	"1)",
	"(1",
	"1]",
}

var kinds = []kind{
	{
		name: "TypeName", check: TypeName,
		ok: []string{"int", "bigint", "numeric(10,2)", "timestamp with time zone", "int[]", `"My Type"`,
			"character varying(20)[]", "public.mytype", `"my schema"."My Type"`, "double precision", "interval day to second",
			"int ARRAY[4]", "bit varying(8)", "timestamp(3) without time zone", "text /* a comment */", "int -- comment\n"},
		bad: []string{"int; drop table other", "int, drop column keepme", "int, alter column keepme type int using length(keepme)",
			"int DEFAULT 1", "int NOT NULL", "int PRIMARY KEY", "setof int", "int references other", "int COLLATE \"C\"",
			"int) ; select (1", "int /*", "int --", "int GENERATED ALWAYS AS (1) STORED", "1", "'x'", "int, b int"},
	},
	{
		name: "Expr", check: Expr,
		ok: []string{"1", "lower(email)", "email || ';'", "'--' || email", "CAST(a AS bigint)", "a::numeric(10,2)",
			"CASE WHEN a > 0 THEN 'pos' ELSE 'neg' END", "(SELECT max(id) FROM other)", "a IN (SELECT id FROM other WHERE id > 1)",
			"coalesce(a, b, 'x')", "ROW(a, b)", "$$ a ; string $$", "'it''s'", "E'\\''", `E'\\d+'`, "a -- trailing comment\n",
			"now() AT TIME ZONE 'utc'", "ARRAY[1, 2]", "x[1]", "a /* ; */ + 1"},
		bad: []string{"1, 2", "(1, 2)", "(WITH d AS (DELETE FROM t RETURNING 1) SELECT 1)",
			"(SELECT 1 FROM t FOR UPDATE)", "1) AS x, (2", "1 FROM t", "a AS b", "1 --\n; drop table x"},
	},
	{
		name: "Predicate", check: Predicate,
		ok:  []string{"a > 0", "a IS NOT NULL AND b <> ';'", "deleted_at IS NULL", "(a = 1) OR (b = 2)"},
		bad: []string{"a > 0 WITH (fillfactor = 10)", "true, false", "a > 0 INCLUDE (b)"},
	},
	{
		name: "Default", check: Default,
		ok:  []string{"0", "'x'", "now()", "nextval('s'::regclass)", "'{}'::jsonb", "1 + 2", "CURRENT_TIMESTAMP"},
		bad: []string{"1 NOT NULL", "1 CHECK (false)", "0 REFERENCES other", "1 UNIQUE", "1, b int", "1 PRIMARY KEY", "a AND b"},
	},
	{
		name: "SetDefault", check: SetDefault,
		ok:  []string{"0", "now() AT TIME ZONE 'utc'", "a AND b"},
		bad: []string{"1, ALTER COLUMN d DROP NOT NULL", "1, DROP COLUMN k"},
	},
	{
		name: "Check", check: Check,
		ok:  []string{"a > 0", "length(name) < 100 AND name <> ''", "a IN (1, 2, 3)"},
		bad: []string{"a > 0) NOT VALID, ADD CONSTRAINT d CHECK (true", "true) NO INHERIT", "a, b"},
	},
	{
		name: "Generated", check: Generated,
		ok:  []string{"a * 2", "lower(name)", "a || ' ' || b"},
		bad: []string{"1) STORED, b int GENERATED ALWAYS AS (1", "1, 2"},
	},
	{
		name: "SequenceOptions", check: SequenceOptions,
		ok:  []string{"START WITH 10 INCREMENT BY 5", "MINVALUE 1 MAXVALUE 100 CYCLE", "CACHE 20", "START 1"},
		bad: []string{"START WITH 1), b int", "START WITH 1)) ; drop table x; select ((1", "1 + 1", "lower(x)"},
	},
	{
		name: "StorageParameters", check: StorageParameters,
		ok:  []string{"fillfactor = 70", "fillfactor=70, deduplicate_items = off", "buffering = auto"},
		bad: []string{"fillfactor = 70) WHERE (false", "fillfactor = 70) TABLESPACE x WITH (a=1", "1", "fillfactor = (select 1)"},
	},
	{
		name: "OpclassParam", check: OpclassParam,
		ok:  []string{"1", "'x'", "100"},
		bad: []string{"1), d (p = 2", "1, q = 2", "(1)"},
	},
	{
		name: "ExclusionElements", check: ExclusionElements,
		ok:  []string{"during WITH &&", "room WITH =, during WITH &&", "(lower(name)) WITH =", "c gist_int4_ops WITH ="},
		bad: []string{"c WITH =) WHERE (false", "c WITH =), ADD COLUMN d int, ADD CONSTRAINT e EXCLUDE (c WITH ="},
	},
}

func TestKinds(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			for _, s := range k.ok {
				if err := k.check(s); err != nil {
					t.Errorf("%q: refused a valid value: %v", s, err)
				}
			}
			for _, s := range append(append([]string{}, hostileAll...), k.bad...) {
				err := k.check(s)
				var se *Error
				if !errors.As(err, &se) {
					t.Errorf("%q: accepted (or no *Error): %v", s, err)
					continue
				}
				if se.Expected == "" || !strings.HasPrefix(err.Error(), "want ") {
					t.Errorf("%q: the error does not say what was expected: %v", s, err)
				}
			}
		})
	}
}

func TestErrorPosition(t *testing.T) {
	cases := []struct {
		s    string
		pos  int
		says string
	}{
		{"int; drop table other", 4, `";"`},
		{"int drop table", 10, `syntax error at or near "table"`},
		{"ünï; x", 4, `";"`},
		{"int) x", 4, "closes a bracket"},
		{"a\x00b", 2, "NUL"},
	}
	for _, c := range cases {
		err := TypeName(c.s)
		var se *Error
		if !errors.As(err, &se) {
			t.Fatalf("%q: want *Error, got %v", c.s, err)
		}
		if se.Pos != c.pos || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%q: pos %d (%v); want pos %d and %q", c.s, se.Pos, err, c.pos, c.says)
		}
	}
	if err := TypeName("int drop"); !strings.Contains(err.Error(), "a single type name") {
		t.Errorf("the message does not name what was expected: %v", err)
	}
}

func TestColumns(t *testing.T) {
	cases := []struct {
		s    string
		want []string
	}{
		{"lower(email)", []string{"email"}},
		{`a + "B" + t.c`, []string{"B", "a", "c"}},
		{"CAST(a AS int) || b::text", []string{"a", "b"}},
		{"(SELECT max(x) FROM other WHERE other.y = a)", []string{"a", "x", "y"}},
		{"'a' || now()::text", nil},
		{"extract(year FROM created_at)", []string{"created_at"}},
		{"date '2024-01-01' + days", []string{"days"}},
		{"CASE WHEN flag THEN a ELSE b END", []string{"a", "b", "flag"}},
	}
	for _, c := range cases {
		got, err := Columns(c.s)
		if err != nil {
			t.Fatalf("%q: %v", c.s, err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.s, got, c.want)
		}
	}
	if _, err := Columns("a; drop table x"); err == nil {
		t.Error("Columns accepted a second statement")
	}
}
