package main

import (
	"strings"
	"testing"

	"github.com/onlinepg/online/internal/pgtest"
)

// TestCLIMoves: a move of data between tables at the CLI. A file with a bad
// from field, and data that breaks the partner rule the file states, exit
// 2 naming the file, the operation and the field, with nothing changed;
// plan shows the triggers on both tables and their locks.
func TestCLIMoves(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	db := pgtest.Connect(t, url)
	pgtest.Exec(t, db,
		"CREATE TABLE users (id bigserial PRIMARY KEY, name text)",
		"CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id), tier text)",
		"INSERT INTO users (name) VALUES ('a'), ('b')",
		"INSERT INTO orders (user_id, tier) VALUES (1, 'gold'), (1, 'gold'), (2, 'basic')")
	dir := t.TempDir()
	move := func(name, from string) string {
		return writeFile(t, dir, name, "operations:\n  - add_column: { table: users, column: { name: tier, type: text, nullable: true }, from: "+from+" }\n")
	}
	good := move("01_tier.yaml", "{ table: orders, value: orders.tier, where: orders.user_id = users.id, several: same, down: { tier: users.tier } }")
	noWhere := move("02_no_where.yaml", "{ table: orders, value: orders.tier }")
	twoStatements := move("03_injected.yaml", `{ table: orders, value: orders.tier, where: "true; DROP TABLE users" }`)
	several := move("04_several.yaml", "{ table: orders, value: orders.tier, where: orders.user_id = users.id }")
	db2 := []string{"--database-url", url}
	before := pgtest.DumpSchema(t, url, "public")

	for _, s := range []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{name: "plan", args: []string{"plan", good}, code: 0, stdout: []string{`CREATE TRIGGER "_online_m`, `ON "public"."orders"`, `ON "public"."users"`,
			"[lock: SHARE ROW EXCLUSIVE on orders, then ACCESS EXCLUSIVE on users", "drop the triggers that keep orders and users equal"}},
		{name: "where missing", args: []string{"start", noWhere}, code: 2, stderr: []string{"02_no_where.yaml", "operation 1 (add_column)", `field "from.where"`, "is required"}},
		{name: "where is two statements", args: []string{"start", twoStatements}, code: 2, stderr: []string{"03_injected.yaml", `field "from.where"`}},
		{name: "several partners", args: []string{"start", several}, code: 2, stderr: []string{"04_several.yaml", "operation 1 (add_column)", `field "from.several"`, "1 rows of users have more than one row of orders", "keys: 1"}},
	} {
		r := runCLI(t, append(s.args, db2...)...)
		expectCLI(t, s.name, r, s.code, s.stdout, s.stderr)
	}
	if after := pgtest.DumpSchema(t, url, "public"); after != before {
		t.Fatalf("refused commands changed the schema:\n%s", after)
	}
	if got := strings.Join(pgtest.QueryStrings(t, db, "SELECT tier FROM orders ORDER BY id"), ","); got != "gold,gold,basic" {
		t.Fatalf("rows changed: %s", got)
	}
	if r := runCLI(t, append([]string{"start", good}, db2...)...); r.code != 0 {
		t.Fatalf("start: exit %d\n%s", r.code, r.stderr)
	}
	if r := runCLI(t, append([]string{"complete"}, db2...)...); r.code != 0 {
		t.Fatalf("complete: exit %d\n%s", r.code, r.stderr)
	}
	if got := strings.Join(pgtest.QueryStrings(t, db, "SELECT tier FROM users ORDER BY id"), ","); got != "gold,basic" {
		t.Fatalf("users.tier after complete: %s", got)
	}
}
