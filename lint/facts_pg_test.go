package lint

import (
	"context"
	"fmt"
	"testing"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
)

// TestRewriteFactsAgainstPostgreSQL holds the type-change judgement of
// changing-column-type to what PostgreSQL does: a change lint lets pass must
// keep the table's file (no rewrite), one it flags must replace it.
func TestRewriteFactsAgainstPostgreSQL(t *testing.T) {
	t.Parallel()
	conn := pgtest.Connect(t, pgtest.NewDB(t))
	ctx := context.Background()
	for i, tc := range []struct{ old, new string }{
		{"varchar(40)", "varchar(60)"},
		{"varchar(40)", "varchar(40)"},
		{"varchar(40)", "varchar(20)"},
		{"varchar(40)", "text"},
		{"varchar(40)", "varchar"},
		{"text", "varchar"},
		{"text", "varchar(200)"},
		{"numeric(10,2)", "numeric(14,2)"},
		{"numeric(10,2)", "numeric"},
		{"numeric(10,2)", "numeric(14,4)"},
		{"numeric(10,2)", "numeric(8,2)"},
		{"cidr", "inet"},
		{"integer", "bigint"},
	} {
		table := fmt.Sprintf("t%d", i)
		value := "'1'"
		if tc.old == "cidr" {
			value = "'10.0.0.0/8'"
		}
		pgtest.Exec(t, conn, fmt.Sprintf("CREATE TABLE %s (c %s)", pg.Ident(table), tc.old),
			fmt.Sprintf("INSERT INTO %s VALUES (%s)", pg.Ident(table), value))
		var before, after uint32
		q := "SELECT relfilenode FROM pg_class WHERE relname = $1"
		if err := conn.QueryRow(ctx, q, table).Scan(&before); err != nil {
			t.Fatal(err)
		}
		pgtest.Exec(t, conn, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN c TYPE %s", pg.Ident(table), tc.new))
		if err := conn.QueryRow(ctx, q, table).Scan(&after); err != nil {
			t.Fatal(err)
		}
		src := fmt.Sprintf("SET lock_timeout = '1s'; CREATE TABLE %s (c %s); ALTER TABLE %s ADD COLUMN d int;", table, tc.old, table)
		// The CREATE makes the table new to lint, which then skips it; the
		// type must come from an earlier file, as in a migrations directory.
		k := newKnowledge()
		rep := &Report{}
		if err := lintFile(rep, k, "a.sql", []byte(src)); err != nil {
			t.Fatal(err)
		}
		rep = &Report{}
		if err := lintFile(rep, k, "b.sql", []byte(fmt.Sprintf("SET lock_timeout = '1s'; ALTER TABLE %s ALTER COLUMN c TYPE %s;", table, tc.new))); err != nil {
			t.Fatal(err)
		}
		flagged := len(rep.Findings) > 0
		rewrote := before != after
		if flagged != rewrote {
			t.Errorf("%s -> %s: PostgreSQL rewrote: %v; lint flagged: %v", tc.old, tc.new, rewrote, flagged)
		}
	}
}
