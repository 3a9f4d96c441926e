package sqllex

import (
	"context"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/onlinepg/online/internal/pgtest"
)

// renames is the visible → physical map of the RenameIdentifiers tests: the
// names are chosen to collide with keywords, types, literal prefixes and
// words inside strings and comments.
var renames = map[string]string{
	"email":  "_online_email",
	"time":   "_online_time",
	"day":    "_online_day",
	"date":   "_online_date",
	"select": "_online_select",
	"Äpfel":  "_online_Äpfel",
	"x":      "_online_x",
	"b":      "_online_b",
	"u":      "_online_u",
	"e5":     "_online_e5",
	"lower":  "_online_lower",
	"text":   "_online_text",
	"C":      "_online_C",
	"at":     "_online_at",
	"second": "_online_second",
	"year":   "_online_year",
	"Mixed":  "_online_Mixed",
}

var renameCases = []struct {
	name, expr, want string
	// db: the expression is valid over table src (see TestRenameIdentifiersDB)
	db bool
}{
	{"plain", "email", `"_online_email"`, true},
	{"upper case folds", "EMAIL IS NULL", `"_online_email" IS NULL`, true},
	{"quoted", `"email" <> ''`, `"_online_email" <> ''`, true},
	{"quoted keeps case", `"Mixed" + Mixed`, `"_online_Mixed" + Mixed`, false},
	{"quoted with doubled quote", `"em""ail"`, `"em""ail"`, false},
	{"function name kept", "lower(email)", `lower("_online_email")`, true},
	{"function name kept with space", "lower (email)", `lower ("_online_email")`, true},
	{"function name kept with comment", "lower/* c */(email)", `lower/* c */("_online_email")`, true},
	{"qualified function", "pg_catalog.lower(email)", `pg_catalog.lower("_online_email")`, true},
	{"string literal", "email = 'email'", `"_online_email" = 'email'`, true},
	{"string with doubled quote", "email = 'it''s email' OR x = 1", `"_online_email" = 'it''s email' OR "_online_x" = 1`, true},
	{"E string with escaped quote", `email = E'it\'s email' OR x = 1`, `"_online_email" = E'it\'s email' OR "_online_x" = 1`, true},
	{"e string lower case", `email = e'\\' OR x = 1`, `"_online_email" = e'\\' OR "_online_x" = 1`, true},
	{"backslash in standard string", `email = 'a\' OR x = 1`, `"_online_email" = 'a\' OR "_online_x" = 1`, true},
	{"dollar quote", "email = $$email$$", `"_online_email" = $$email$$`, true},
	{"dollar quote with spaces", "email = $$ email $$", `"_online_email" = $$ email $$`, true},
	{"tagged dollar quote", "email = $t$ it's $$ email $t$ OR x = 1", `"_online_email" = $t$ it's $$ email $t$ OR "_online_x" = 1`, true},
	{"line comment", "email -- email\n", "\"_online_email\" -- email\n", true},
	{"block comment", "/* email */ email", `/* email */ "_online_email"`, true},
	{"nested block comment", "/* a /* b */ it's */ email", `/* a /* b */ it's */ "_online_email"`, true},
	{"cast", "email::text", `"_online_email"::text`, true},
	{"cast with spaces", "x :: text", `"_online_x" :: text`, true},
	{"cast to column-named type", "time::time", `"_online_time"::time`, true},
	{"cast to multi-word type", "ts::timestamp with time zone", "ts::timestamp with time zone", true},
	{"cast to type with modifier", "ts::timestamp(3) with time zone > now()", "ts::timestamp(3) with time zone > now()", true},
	{"cast to array type", "ARRAY[x]::int[] = '{6}'", `ARRAY["_online_x"]::int[] = '{6}'`, true},
	{"cast to interval fields", "'1'::interval day to second", "'1'::interval day to second", true},
	{"CAST AS", "CAST(x AS text)", `CAST("_online_x" AS text)`, true},
	{"CAST AS column-named type", "CAST(ts AS time)", "CAST(ts AS time)", true},
	{"typed literal", "date '2024-01-01' < now()", "date '2024-01-01' < now()", true},
	{"interval literal field", "interval '1' day", "interval '1' day", true},
	{"interval literal range", "interval '1-2' year to month", "interval '1-2' year to month", true},
	{"at time zone", "ts AT TIME ZONE 'UTC' > now()", "ts AT TIME ZONE 'UTC' > now()", true},
	{"column named at", "at + 1", `"_online_at" + 1`, true},
	{"extract field", "extract(day from ts) = day", `extract(day from ts) = "_online_day"`, true},
	{"qualified column", "t.email", `t."_online_email"`, true},
	{"schema-qualified column", "public.users.email", `public.users."_online_email"`, false},
	{"qualifier is not a column", "x.email", `x."_online_email"`, false},
	{"composite field", "(comp).email", "(comp).email", true},
	{"star", "t.* IS NOT NULL", "t.* IS NOT NULL", true},
	{"reserved word unquoted", "EXISTS (SELECT 1)", "EXISTS (SELECT 1)", true},
	{"reserved word quoted", `"select" > 0`, `"_online_select" > 0`, true},
	{"keyword after literal", "'a' BETWEEN email AND email", `'a' BETWEEN "_online_email" AND "_online_email"`, true},
	{"hex bit string", "x'1F' = x'1F'", "x'1F' = x'1F'", true},
	{"bit string", "b'101' = b'101'", "b'101' = b'101'", true},
	{"hex bit string vs column", "x = 1", `"_online_x" = 1`, true},
	{"national string", "n'abc' = email", `n'abc' = "_online_email"`, true},
	{"unicode string", `U&'\0065mail' = email`, `U&'\0065mail' = "_online_email"`, true},
	{"unicode string uescape", `U&'!0065mail' UESCAPE '!' = email`, `U&'!0065mail' UESCAPE '!' = "_online_email"`, true},
	{"unicode identifier", `U&"\0065mail" = ''`, `"_online_email" = ''`, true},
	{"unicode identifier uescape", `U&"!0065mail" UESCAPE '!' = ''`, `"_online_email" = ''`, true},
	{"column u is not U&", "u = 1", `"_online_u" = 1`, true},
	{"non-ASCII letters do not fold", "Äpfel > 0", `"_online_Äpfel" > 0`, true},
	{"number exponent", "1e5 + e5", `1e5 + "_online_e5"`, true},
	{"decimal", "1.5 + .5 + x", `1.5 + .5 + "_online_x"`, true},
	{"parameter", "x = $1", `"_online_x" = $1`, false},
	{"dollar inside identifier", "email$x", "email$x", false},
	{"collation", `email COLLATE "C" > ''`, `"_online_email" COLLATE "C" > ''`, true},
	{"case expression", "CASE WHEN day > 1 THEN 'day' ELSE email END", `CASE WHEN "_online_day" > 1 THEN 'day' ELSE "_online_email" END`, true},
	{"in list", "day IN (1, 2, year)", `"_online_day" IN (1, 2, "_online_year")`, true},
	{"index definition", "public.email USING btree (email DESC NULLS LAST) WHERE (x IS NULL)", `public.email USING btree ("_online_email" DESC NULLS LAST) WHERE ("_online_x" IS NULL)`, false},
	{"index definition unqualified", "email USING btree (lower(email) text_pattern_ops)", `email USING btree (lower("_online_email") text_pattern_ops)`, false},
	{"foreign key definition", "FOREIGN KEY (x) REFERENCES public.x(id) ON DELETE CASCADE", `FOREIGN KEY ("_online_x") REFERENCES public.x(id) ON DELETE CASCADE`, false},
	{"foreign key to a column of the same name", "FOREIGN KEY (x, email) REFERENCES other (x, email)", `FOREIGN KEY ("_online_x", "_online_email") REFERENCES other (x, email)`, false},
	{"check definition", "CHECK ((email ~~ '%@%'::text))", `CHECK (("_online_email" ~~ '%@%'::text))`, false},
	{"unterminated string", "x = 'abc", `"_online_x" = 'abc`, false},
	{"unterminated quoted identifier", `x = "abc`, `"_online_x" = "abc`, false},
	{"unterminated comment", "x /* abc", `"_online_x" /* abc`, false},
	{"unterminated dollar quote", "x = $$abc", `"_online_x" = $$abc`, false},
	{"empty", "", "", false},
}

func TestRenameIdentifiers(t *testing.T) {
	t.Parallel()
	for _, c := range renameCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := RenameIdentifiers(c.expr, renames); got != c.want {
				t.Errorf("RenameIdentifiers(%q)\n got %s\nwant %s", c.expr, got, c.want)
			}
			if got := RenameIdentifiers(c.expr, nil); got != c.expr {
				t.Errorf("RenameIdentifiers(%q, nil) = %q, want the expression unchanged", c.expr, got)
			}
		})
	}
}

// TestRenameIdentifiersDB checks that renamed expressions mean, over a table
// whose columns carry the physical names, what the originals mean over a
// table with the visible names.
func TestRenameIdentifiersDB(t *testing.T) {
	t.Parallel()
	conn := pgtest.Connect(t, pgtest.NewDB(t))
	cols := func(phys func(string) string) string {
		var defs []string
		for _, c := range []struct{ name, typ string }{
			{"email", "text"}, {"time", "time"}, {"day", "int"}, {"date", "date"}, {"select", "int"},
			{"Äpfel", "int"}, {"x", "int"}, {"b", "int"}, {"u", "int"}, {"e5", "int"}, {"lower", "int"},
			{"text", "text"}, {"C", "int"}, {"at", "int"}, {"second", "int"}, {"year", "int"},
		} {
			defs = append(defs, `"`+phys(c.name)+`" `+c.typ)
		}
		return strings.Join(defs, ", ") + ", ts timestamptz, comp pair"
	}
	vals := "'a@b', '10:00', 3, '2024-01-02', 4, 5, 6, 7, 8, 9, 10, 'txt', 11, 12, 13, 14, '2024-01-02 03:04:05+00', ROW('in', 1)"
	pgtest.Exec(t, conn,
		`CREATE TYPE pair AS (email text, n int)`,
		`CREATE TABLE src (`+cols(func(s string) string { return s })+`)`,
		`CREATE TABLE dst (`+cols(func(s string) string { return renames[s] })+`)`,
		`INSERT INTO src VALUES (`+vals+`)`,
		`INSERT INTO dst VALUES (`+vals+`)`,
	)
	for _, c := range renameCases {
		if !c.db {
			continue
		}
		var want, got *string
		q := func(expr, table string, out **string) {
			t.Helper()
			sql := "SELECT (" + expr + "\n)::text FROM " + table + " AS t"
			if err := conn.QueryRow(context.Background(), sql).Scan(out); err != nil {
				t.Errorf("%s: %s: %v", c.name, sql, err)
			}
		}
		q(c.expr, "src", &want)
		q(RenameIdentifiers(c.expr, renames), "dst", &got)
		if (want == nil) != (got == nil) || want != nil && *want != *got {
			t.Errorf("%s: %q over src gives %v, renamed over dst gives %v", c.name, c.expr, deref(want), deref(got))
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "NULL"
	}
	return *s
}

func TestReferencedColumns(t *testing.T) {
	t.Parallel()
	names := []string{"email", "time", "day", "select", "lower", "users", "Mixed", "mixed", "Äpfel", "x", "comp", "id"}
	cases := []struct {
		name, expr string
		want       []string
	}{
		{"plain", "email IS NOT NULL", []string{"email"}},
		{"several, in names order", "id > 0 AND email <> '' AND x = 1", []string{"email", "x", "id"}},
		{"case folding", "EMAIL = 'a' AND MIXED = 1", []string{"email", "mixed"}},
		{"quoted keeps case", `"Mixed" = 1`, []string{"Mixed"}},
		{"quoted reserved word", `"select" = 1`, []string{"select"}},
		{"unquoted reserved word", "EXISTS (SELECT 1)", nil},
		{"string literal", "'email' || 'x'", nil},
		{"E string", `E'\' email' || id`, []string{"id"}},
		{"dollar quote", "$$ email $$ || $t$ x $t$ || id", []string{"id"}},
		{"comments", "/* email */ id -- x", []string{"id"}},
		{"nested comment with quote", "/* /* */ it's */ email", []string{"email"}},
		{"function name", "lower(email)", []string{"email"}},
		{"function name that is also a column", "lower(lower)", []string{"lower"}},
		{"cast", "x::time", []string{"x"}},
		{"cast with spaces", "x :: time", []string{"x"}},
		{"CAST AS", "CAST(x AS time)", []string{"x"}},
		{"qualified", "users.email = 'a'", []string{"email"}},
		{"quoted qualified", `"users"."Mixed" = 1`, []string{"Mixed"}},
		{"composite field", "(comp).email", []string{"comp"}},
		{"typed literal", "date '2024-01-01' < now() AND time '10:00' > x::time", []string{"x"}},
		{"at time zone", "x AT TIME ZONE 'UTC'", []string{"x"}},
		{"interval field", "interval '1' day + x", []string{"x"}},
		{"extract", "extract(day from x) = 1", []string{"x"}},
		{"unicode identifier", `U&"\0065mail" = ''`, []string{"email"}},
		{"non-ASCII letters do not fold", "Äpfel > 0", []string{"Äpfel"}},
		{"non-ASCII lower case is another name", "äpfel > 0", nil},
		{"hex literal is not column x", "x'1F' = b'00011111'", nil},
		{"nothing", "1 + 1", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := ReferencedColumns(c.expr, names); !slices.Equal(got, c.want) {
				t.Errorf("ReferencedColumns(%q) = %q, want %q", c.expr, got, c.want)
			}
		})
	}
}

// TestLexRoundTrip: the tokens of any expression give it back, so
// RenameIdentifiers changes only the identifiers it renames.
func TestLexRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range renameCases {
		checkLex(t, c.expr)
	}
	for _, expr := range []string{"$", "$$", "$a", "$a$", "E'", `E'\`, "U&", `U&"`, `U&"\`, `U&"\+0`, "'", `"`, "/*", "/* /*", "--", "0x", "1e", "1e+", ".", "..", "::", ":"} {
		checkLex(t, expr)
	}
}

func checkLex(t *testing.T, expr string) {
	t.Helper()
	var b strings.Builder
	for _, tok := range Lex(expr) {
		if tok.Text == "" {
			t.Errorf("Lex(%q): empty Token", expr)
		}
		b.WriteString(tok.Text)
	}
	if b.String() != expr {
		t.Errorf("Lex(%q) gives back %q", expr, b.String())
	}
}

// FuzzRenameIdentifiers: no panic; the lexer gives back its input; renaming
// by an empty map changes nothing; after renaming, none of the renamed names
// is referenced any more.
func FuzzRenameIdentifiers(f *testing.F) {
	for _, c := range renameCases {
		f.Add(c.expr)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		if !utf8.ValidString(expr) {
			return
		}
		checkLex(t, expr)
		if got := RenameIdentifiers(expr, nil); got != expr {
			t.Fatalf("RenameIdentifiers(%q, nil) = %q", expr, got)
		}
		names := []string{"email", "x", "day", "select"}
		m := map[string]string{}
		for _, n := range names {
			m[n] = "_online_" + n
		}
		out := RenameIdentifiers(expr, m)
		if left := ReferencedColumns(out, names); len(left) > 0 {
			t.Fatalf("RenameIdentifiers(%q) = %q still references %q", expr, out, left)
		}
	})
}
