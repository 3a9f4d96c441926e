package phases_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/onlinepg/online/internal/pg"
)

const ordersTable = `CREATE TABLE orders (id bigserial PRIMARY KEY, email text NOT NULL, price numeric(10,2) NOT NULL, qty int NOT NULL, note text)`
const ordersRows = `INSERT INTO orders (email, price, qty, note) SELECT 'User' || g || '@Example.IO', (g % 100) + 0.25, g % 7, 'n' || g FROM generate_series(1, 3000) g`

// genWrong counts the rows whose trigger-maintained columns differ from
// their expressions (rounded as storing them in numeric(12,2) does).
const genWrong = `SELECT count(*) FROM orders WHERE email_lower IS DISTINCT FROM lower(email) OR total IS DISTINCT FROM CAST(price * qty AS numeric(12,2))`

const genMigration = `
operations:
  - add_column:
      table: orders
      column: { name: email_lower, type: text, nullable: true, generated: { expression: lower(email) } }
  - add_column:
      table: orders
      column: { name: total, type: "numeric(12,2)", nullable: false, generated: { expression: price * qty } }
`

// TestGeneratedColumnOnline adds two stored generated columns to a table
// with rows, behind a first migration so that the old version is a version
// schema that must not see them: start, writes through both versions,
// rollback to the same schema, start again, complete. The table is never
// rewritten, every row holds its expression's value, and the guarding
// checks are validated.
func TestGeneratedColumnOnline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, ordersTable, ordersRows)
	e.start("01_memo", "operations:\n  - rename_column: { table: orders, from: note, to: memo }\n")
	e.complete()
	filenode := e.rows(e.db, "SELECT pg_relation_filenode('orders')")
	before := e.dump()

	for round := 1; round <= 2; round++ {
		e.start("02_generated", genMigration)
		old, nw := e.version("public_01_memo"), e.version("public_02_generated")

		e.expectErr(old, "email_lower", "SELECT email_lower FROM orders")
		if round == 1 {
			e.expectRows(nw, []string{"user1@example.io|1.25", "user2@example.io|4.50"},
				"SELECT email_lower, total::text FROM orders WHERE id IN (1, 2) ORDER BY id")
		}
		// Rows written in this round; rollback keeps the data.
		r := fmt.Sprintf("R%d", round)
		lr := strings.ToLower(r)

		// Old version writes: the new columns follow.
		e.exec(old, "INSERT INTO orders (email, price, qty, memo) VALUES ($1, 2.55, 3, 'o')", "Old@X.io"+r)
		e.expectRows(nw, []string{"old@x.io" + lr + "|7.65"}, "SELECT email_lower, total::text FROM orders WHERE email = $1", "Old@X.io"+r)
		e.exec(old, "UPDATE orders SET email = $1, qty = 10 WHERE id = 3", "Moved@Y.io"+r)
		e.expectRows(nw, []string{"moved@y.io" + lr + "|32.50"}, "SELECT email_lower, total::text FROM orders WHERE id = 3")
		e.exec(old, "UPDATE orders SET memo = 'm' WHERE id <= 100")

		// New version writes, explicit values of the generated columns
		// included: they are overwritten, as the expression decides.
		e.exec(nw, "INSERT INTO orders (email, price, qty) VALUES ($1, 1, 4)", "New@Z.io"+r)
		e.exec(nw, "INSERT INTO orders (email, price, qty, email_lower, total) VALUES ($1, 1, 1, 'forged', 999)", "Forged@Z.io"+r)
		e.exec(nw, "UPDATE orders SET email_lower = 'bogus', total = -1 WHERE id = 4")
		e.exec(nw, "UPDATE orders SET qty = qty + 1 WHERE id <= 10")
		e.expectRows(nw, []string{"new@z.io" + lr + "|4.00", "forged@z.io" + lr + "|1.00"},
			"SELECT email_lower, total::text FROM orders WHERE email IN ($1, $2) ORDER BY id", "New@Z.io"+r, "Forged@Z.io"+r)
		e.expectRows(old, []string{"User4@Example.IO"}, "SELECT email FROM orders WHERE id = 4")

		e.expectRows(e.db, []string{"0"}, genWrong)
		e.expectRows(e.db, []string{"_online_gen_email_lower|true", "_online_gen_total|true", "_online_gen_total_nn|true"},
			"SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'orders'::regclass AND contype = 'c' ORDER BY conname")

		if round == 1 {
			e.rollback()
			if after := e.dump(); after != before {
				t.Fatalf("rollback did not restore the schema:\n--- before\n%s\n--- after\n%s", before, after)
			}
		}
	}
	e.complete()
	nw := e.version("public_02_generated")

	e.expectRows(e.db, filenode, "SELECT pg_relation_filenode('orders')")
	e.expectRows(e.db, []string{"0"}, genWrong)
	e.expectRows(e.db, []string{"3006"}, "SELECT count(*) FROM orders")
	// Plain columns, kept by the trigger and guarded by validated checks;
	// NOT NULL proven by its check, which is gone.
	e.expectRows(e.db, []string{"email_lower||false", "total||true"},
		"SELECT attname, attgenerated::text, attnotnull FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname IN ('email_lower', 'total') ORDER BY attname")
	e.expectRows(e.db, []string{"_online_gen_email_lower|true", "_online_gen_total|true"},
		"SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'orders'::regclass AND contype = 'c' ORDER BY conname")
	e.expectRows(e.db, []string{"_online_gen_email_lower", "_online_gen_total"},
		"SELECT tgname FROM pg_trigger WHERE tgrelid = 'orders'::regclass AND NOT tgisinternal ORDER BY tgname")

	// Writes after complete keep the values right, through the version
	// and through the table.
	e.exec(nw, "UPDATE orders SET price = price * 2 WHERE id % 3 = 0")
	e.exec(e.db, "UPDATE orders SET email = upper(email), total = 0 WHERE id % 5 = 0")
	e.exec(e.db, "INSERT INTO orders (email, price, qty, total) VALUES ('After@C.io', 3, 3, 1)")
	e.expectRows(e.db, []string{"0"}, genWrong)
	e.expectRows(e.db, []string{"after@c.io|9.00"}, "SELECT email_lower, total::text FROM orders WHERE email = 'After@C.io'")
	// With the trigger out of the way, the check still refuses a wrong value.
	e.exec(e.db, "ALTER TABLE orders DISABLE TRIGGER _online_gen_total")
	e.expectErr(e.db, "_online_gen_total", "UPDATE orders SET qty = qty + 1 WHERE id = 1")
}

// TestGeneratedColumnVolatile: PostgreSQL computes a generated column only
// from immutable expressions; start refuses a volatile or stable one,
// naming the operation and the field, and leaves the schema as it was.
func TestGeneratedColumnVolatile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, ordersTable, ordersRows)
	before := e.dump()
	for _, expr := range []string{"email || random()::text", "email || now()::text", "email::date::text"} {
		yaml := "operations:\n  - add_column:\n      table: orders\n      column: { nullable: true, name: tag, type: text, generated: { expression: \"" + expr + "\" } }\n"
		_, err := e.engine().Start(context.Background(), parse(t, "03_volatile", yaml))
		if err == nil {
			t.Fatalf("%s: start succeeded, want a refusal", expr)
		}
		msg := pg.Explain(err)
		for _, want := range []string{"03_volatile.yaml: operation 1 (add_column): field \"column.generated.expression\"", "not immutable", "use add_column with up"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q does not contain %q", expr, msg, want)
			}
		}
		if after := e.dump(); after != before {
			t.Fatalf("%s: a refused start changed the schema:\n--- before\n%s\n--- after\n%s", expr, before, after)
		}
	}
}

// TestGeneratedColumnNewTable: on a table the migration creates, and so
// empty, the column is a real generated column.
func TestGeneratedColumnNewTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start("01_tags", `
operations:
  - create_table: { name: tags, columns: [{ name: id, type: int, pk: true }, { name: label, type: text }] }
  - add_column: { table: tags, column: { nullable: true, name: slug, type: text, generated: { expression: lower(label) } } }
`)
	e.complete()
	e.expectRows(e.db, []string{"s"}, "SELECT attgenerated::text FROM pg_attribute WHERE attrelid = 'tags'::regclass AND attname = 'slug'")
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tags'::regclass")
}

// TestGeneratedColumnReplacesDropped: a generated column takes the name of
// a column the same migration drops, so it lives under a hidden name until
// complete renames it; the trigger function follows the rename.
func TestGeneratedColumnReplacesDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, ordersTable, ordersRows)
	e.start("02_note", `
operations:
  - drop_column: { table: orders, column: note }
  - add_column: { table: orders, column: { nullable: true, name: note, type: text, generated: { expression: "email || '/' || qty" } } }
`)
	nw := e.version("public_02_note")
	e.exec(nw, "INSERT INTO orders (email, price, qty) VALUES ('a@b', 1, 2)")
	e.expectRows(nw, []string{"a@b/2"}, "SELECT note FROM orders WHERE email = 'a@b'")
	e.complete()
	e.exec(e.db, "INSERT INTO orders (email, price, qty) VALUES ('c@d', 1, 5)")
	e.exec(e.db, "UPDATE orders SET qty = 9 WHERE email = 'a@b'")
	e.expectRows(e.db, []string{"a@b/9", "c@d/5"}, "SELECT note FROM orders WHERE email IN ('a@b', 'c@d') ORDER BY email")
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM orders WHERE note IS DISTINCT FROM email || '/' || qty")
}

// TestGeneratedColumnLaterMigrations: a later migration reads the
// trigger-maintained column from the catalog. Renaming, dropping or
// rewriting what the trigger reads or computes is refused before any change
// (it would break the trigger, or fail at complete); dropping the generated
// column itself removes its trigger and function first.
func TestGeneratedColumnLaterMigrations(t *testing.T) {
	t.Parallel()
	e := newEnv(t, ordersTable, ordersRows)
	e.start("01_generated", genMigration)
	e.complete()
	before := e.dump()
	eng := e.engine()
	for _, tc := range []struct{ yaml, want string }{
		{"operations: [ { rename_column: { table: orders, from: email, to: mail } } ]", `column "email" of table "orders" is read by the trigger`},
		{"operations: [ { rename_column: { table: orders, from: total, to: sum } } ]", `column "total" of table "orders" is computed by the trigger`},
		{"operations: [ { drop_column: { table: orders, column: qty, down: '1' } } ]", `dropping it is not supported`},
		{"operations: [ { alter_column: { table: orders, column: email, name: mail } } ]", `renaming it is not supported`},
		{`operations: [ { alter_column: { table: orders, column: qty, type: bigint, up: "qty::bigint", down: "qty::int" } } ]`, `is read by the trigger`},
	} {
		_, err := eng.Start(context.Background(), parse(t, "02_bad", tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error containing %q, got %v", tc.yaml, tc.want, pg.Explain(err))
		}
	}
	if got := e.dump(); got != before {
		t.Fatal("a refused migration changed the schema")
	}

	e.start("02_drop", "operations: [ { drop_column: { table: orders, column: total } } ]")
	e.exec(e.db, "UPDATE orders SET qty = qty + 1 WHERE id = 1")
	e.complete()
	e.expectRows(e.db, []string{"1"}, `SELECT count(*) FROM pg_trigger WHERE tgrelid = 'orders'::regclass AND NOT tgisinternal`)
	e.expectRows(e.db, []string{"0"}, `SELECT count(*) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'total' AND NOT attisdropped`)
	e.expectRows(e.db, []string{"1"}, `SELECT count(*) FROM pg_proc WHERE proname LIKE '_online_gen_%'`)
	e.exec(e.db, "INSERT INTO orders (email, price, qty) VALUES ('After@Drop.io', 1, 1)")
	e.expectRows(e.db, []string{"after@drop.io"}, "SELECT email_lower FROM orders WHERE email = 'After@Drop.io'")
}
