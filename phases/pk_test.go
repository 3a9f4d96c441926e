package phases_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/phases"
)

// Key column rewrites: a primary key, or a column other tables' foreign
// keys reference, changes type (int to bigint, the classic one) while both
// versions read and write, the referencing tables included.

// accountsSetup is a serial int primary key referenced by another table
// (with cascades) and by the table itself.
var accountsSetup = []string{
	`CREATE TABLE accounts (id serial PRIMARY KEY, parent_id int REFERENCES accounts (id), name text NOT NULL)`,
	`CREATE TABLE orders (id serial PRIMARY KEY, account_id int NOT NULL CONSTRAINT orders_account_fk REFERENCES accounts (id) ON UPDATE CASCADE ON DELETE CASCADE, amount int)`,
	`INSERT INTO accounts (name) SELECT 'a' || g FROM generate_series(1, 40) g`,
	`UPDATE accounts SET parent_id = id - 1 WHERE id > 1`,
	`INSERT INTO orders (account_id, amount) SELECT 1 + g % 40, g FROM generate_series(1, 100) g`,
}

// keyCatalog asserts the catalog after complete: the key on the column,
// of type typ, valid foreign keys under their old names, nothing of
// online's left.
func keyCatalog(e *env, table, col, typ, pkName string, fks ...string) {
	e.t.Helper()
	e.expectRows(e.db, []string{typ}, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2", "public."+table, col)
	e.expectRows(e.db, []string{pkName + "|" + col}, `
SELECT con.conname, string_agg(a.attname, ',' ORDER BY a.attnum)
FROM pg_constraint con JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey)
WHERE con.conrelid = $1::regclass AND con.contype = 'p' GROUP BY con.conname`, "public."+table)
	for _, fk := range fks {
		e.expectRows(e.db, []string{"true|" + col}, `
SELECT con.convalidated, string_agg(a.attname, ',')
FROM pg_constraint con JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = ANY (con.confkey)
WHERE con.conname = $1 AND con.contype = 'f' GROUP BY con.convalidated`, fk)
	}
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM pg_constraint WHERE conname LIKE '%online%'")
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM pg_class WHERE relname LIKE '%online%' AND relnamespace = 'public'::regnamespace")
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM pg_attribute WHERE attrelid = $1::regclass AND attname LIKE '_online%' AND NOT attisdropped", "public."+table)
	e.expectRows(e.db, []string{"d"}, "SELECT relreplident::text FROM pg_class WHERE oid = $1::regclass", "public."+table)
}

// rerun gives a lifecycle's during hook a number that differs on each of
// its calls (two per start, two starts), so that the rows it writes do not
// collide with those of an earlier call, which rollback keeps.
func rerun(f func(e *env, old, nw *pgx.Conn, k int)) func(e *env, old, nw *pgx.Conn, exclusive bool) {
	k := 0
	return func(e *env, old, nw *pgx.Conn, _ bool) {
		k++
		f(e, old, nw, k)
	}
}

func TestPrimaryKeyRewriteLifecycle(t *testing.T) {
	t.Parallel()
	cases := []lifecycle{
		{
			name:  "serial_pk_to_bigint",
			setup: accountsSetup,
			yaml:  `operations: [ { alter_column: { table: accounts, column: id, type: bigint, up: id, down: id } } ]`,
			during: rerun(func(e *env, old, nw *pgx.Conn, k int) {
				e.expectRows(nw, []string{"bigint"}, "SELECT pg_typeof(id)::text FROM accounts WHERE id = 1")
				e.expectRows(old, []string{"integer"}, "SELECT pg_typeof(id)::text FROM accounts WHERE id = 1")
				// The sequence serves both versions, one number per insert.
				var a, b, c int64
				if err := old.QueryRow(ctx(), "INSERT INTO accounts (name) VALUES ('old') RETURNING id").Scan(&a); err != nil {
					e.t.Fatal(err)
				}
				if err := nw.QueryRow(ctx(), "INSERT INTO accounts (name, parent_id) VALUES ('new' || $2::int, $1) RETURNING id", a, k).Scan(&b); err != nil {
					e.t.Fatal(err)
				}
				if err := old.QueryRow(ctx(), "INSERT INTO accounts (name) VALUES ('old2') RETURNING id").Scan(&c); err != nil {
					e.t.Fatal(err)
				}
				if b != a+1 || c != b+1 {
					e.t.Fatalf("ids %d, %d, %d: want consecutive numbers from the sequence", a, b, c)
				}
				e.expectRows(old, []string{fmt.Sprint(b)}, "SELECT id FROM accounts WHERE name = 'new' || $1::int", k)
				// An explicit key through the new version reaches the old column.
				x, y, z, w := 500000000+k, 600000000+k, 700000000+k, 800000000+k
				e.exec(nw, "INSERT INTO accounts (id, name) VALUES ($1, 'explicit')", x)
				e.expectRows(old, []string{"explicit"}, "SELECT name FROM accounts WHERE id = $1", x)
				// Referencing rows through either version, to rows either version wrote.
				e.exec(old, "INSERT INTO orders (account_id, amount) VALUES ($1, 1), ($2, 2), ($3, 3)", a, b, x)
				e.exec(nw, "INSERT INTO orders (account_id, amount) VALUES ($1, 4), ($2, 5), ($3, 6)", a, b, x)
				e.exec(nw, "INSERT INTO accounts (name, parent_id) VALUES ('child', $1)", x)
				e.exec(old, "INSERT INTO accounts (name, parent_id) VALUES ('child2', $1)", x)
				// Both the old and the new foreign key refuse a missing account.
				e.expectErr(old, "foreign key", "INSERT INTO orders (account_id) VALUES (999999)")
				e.expectErr(nw, "foreign key", "INSERT INTO orders (account_id) VALUES (999999)")
				e.expectErr(nw, "foreign key", "INSERT INTO accounts (name, parent_id) VALUES ('orphan', 999999)")
				// A key change cascades through both foreign keys, from either version.
				e.exec(old, "DELETE FROM accounts WHERE parent_id = $1", x)
				e.exec(old, "UPDATE accounts SET id = $1 WHERE id = $2", y, x)
				e.expectRows(nw, []string{"2"}, "SELECT count(*) FROM orders WHERE account_id = $1", y)
				e.expectRows(nw, []string{fmt.Sprint(y)}, "SELECT id FROM accounts WHERE name = 'explicit' AND id >= 500000000 AND id % 1000 = $1", k)
				e.exec(nw, "UPDATE accounts SET id = $1 WHERE id = $2", z, y)
				e.expectRows(old, []string{"2"}, "SELECT count(*) FROM orders WHERE account_id = $1", z)
				e.expectRows(old, []string{fmt.Sprint(z)}, "SELECT id FROM accounts WHERE name = 'explicit' AND id >= 500000000 AND id % 1000 = $1", k)
				// The self-reference is NO ACTION: a referenced key cannot move.
				e.exec(old, "INSERT INTO accounts (name, parent_id) VALUES ('child3', $1)", z)
				e.expectErr(nw, "foreign key", "UPDATE accounts SET id = $1 WHERE id = $2", w, z)
				e.expectErr(old, "foreign key", "UPDATE accounts SET id = $1 WHERE id = $2", w, z)
				e.exec(nw, "DELETE FROM accounts WHERE parent_id = $1", z)
				e.exec(nw, "DELETE FROM accounts WHERE id = $1", z)
				e.expectRows(old, []string{"0"}, "SELECT count(*) FROM orders WHERE account_id = $1", z)
				// A duplicate key is refused through either version.
				e.expectErr(nw, "duplicate key", "INSERT INTO accounts (id, name) VALUES (1, 'dup')")
				e.expectErr(old, "duplicate key", "INSERT INTO accounts (id, name) VALUES (1, 'dup')")
				e.expectRows(old, []string{"0"}, "SELECT count(*) FROM public.accounts WHERE id IS DISTINCT FROM _online_id")
			}),
			after: func(e *env, nw *pgx.Conn) {
				keyCatalog(e, "accounts", "id", "bigint", "accounts_pkey", "orders_account_fk", "accounts_parent_id_fkey")
				e.expectRows(e.db, []string{"FOREIGN KEY (account_id) REFERENCES accounts(id) ON UPDATE CASCADE ON DELETE CASCADE"},
					"SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'orders_account_fk'")
				// The sequence is the column's, widened, and carries on where it was.
				e.expectRows(e.db, []string{"public.accounts_id_seq|bigint|nextval('accounts_id_seq'::regclass)"},
					"SELECT pg_get_serial_sequence('public.accounts', 'id'), format_type(seqtypid, NULL), pg_get_expr(adbin, adrelid) FROM pg_sequence, pg_attrdef WHERE seqrelid = 'public.accounts_id_seq'::regclass AND adrelid = 'public.accounts'::regclass")
				var last, next int64
				if err := e.db.QueryRow(ctx(), "SELECT last_value FROM public.accounts_id_seq").Scan(&last); err != nil {
					e.t.Fatal(err)
				}
				if err := nw.QueryRow(ctx(), "INSERT INTO accounts (name) VALUES ('after') RETURNING id").Scan(&next); err != nil {
					e.t.Fatal(err)
				}
				if next != last+1 {
					e.t.Fatalf("insert after complete got id %d, want %d", next, last+1)
				}
				e.exec(e.db, "SELECT setval('public.accounts_id_seq', 3000000000)")
				e.expectRows(nw, []string{"3000000001"}, "INSERT INTO accounts (name) VALUES ('big') RETURNING id")
				// orders.account_id is still int (a later migration widens it); it
				// references the bigint key all the same.
				e.exec(nw, "INSERT INTO orders (account_id) VALUES ($1)", next)
				e.expectErr(nw, "foreign key", "INSERT INTO orders (account_id) VALUES (999999)")
				// The data: 40 accounts and their 100 orders untouched.
				e.expectRows(e.db, []string{"40|820|39"}, "SELECT count(*), sum(id)::bigint, count(parent_id) FROM accounts WHERE id <= 40")
				e.expectRows(e.db, []string{"100|5050"}, "SELECT count(*), sum(amount) FROM orders WHERE id <= 100")
			},
		},
		{
			name: "identity_pk_to_bigint",
			setup: []string{
				`CREATE TABLE tickets (id int GENERATED ALWAYS AS IDENTITY (START WITH 100 INCREMENT BY 10) PRIMARY KEY, title text)`,
				`CREATE TABLE notes (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, ticket_id int REFERENCES tickets (id) ON DELETE CASCADE, body text)`,
				`INSERT INTO tickets (title) SELECT 't' || g FROM generate_series(1, 20) g`,
				`INSERT INTO notes (ticket_id, body) SELECT 100 + 10 * (g % 20), 'n' || g FROM generate_series(1, 50) g`,
			},
			yaml: `
operations:
  - alter_column: { table: tickets, column: id, type: bigint }
  - alter_column: { table: notes, column: id, type: bigint }
`,
			during: rerun(func(e *env, old, nw *pgx.Conn, k int) {
				var a, b int64
				if err := old.QueryRow(ctx(), "INSERT INTO tickets (title) VALUES ('old') RETURNING id").Scan(&a); err != nil {
					e.t.Fatal(err)
				}
				if err := nw.QueryRow(ctx(), "INSERT INTO tickets (title) VALUES ('new') RETURNING id").Scan(&b); err != nil {
					e.t.Fatal(err)
				}
				if b != a+10 {
					e.t.Fatalf("identity ids %d then %d: want one step of 10", a, b)
				}
				// GENERATED ALWAYS is relaxed to BY DEFAULT until complete
				// (the sync trigger writes the old column).
				e.exec(old, "INSERT INTO tickets (id, title) VALUES ($1, 'explicit')", 5+k)
				e.expectRows(nw, []string{"explicit"}, "SELECT title FROM tickets WHERE id = $1", 5+k)
				e.exec(old, "INSERT INTO notes (ticket_id, body) VALUES ($1, 'o')", b)
				e.exec(nw, "INSERT INTO notes (ticket_id, body) VALUES ($1, 'n')", a)
				e.exec(nw, "INSERT INTO notes (id, ticket_id, body) VALUES ($2, $1, 'explicit')", a, 100000+k)
				e.expectRows(old, []string{"explicit"}, "SELECT body FROM notes WHERE id = $1", 100000+k)
				e.expectErr(nw, "foreign key", "INSERT INTO notes (ticket_id) VALUES (3)")
				e.exec(nw, "DELETE FROM tickets WHERE id = $1", a)
				e.expectRows(old, []string{"0"}, "SELECT count(*) FROM notes WHERE ticket_id = $1", a)
			}),
			after: func(e *env, nw *pgx.Conn) {
				keyCatalog(e, "tickets", "id", "bigint", "tickets_pkey", "notes_ticket_id_fkey")
				keyCatalog(e, "notes", "id", "bigint", "notes_pkey")
				e.expectRows(e.db, []string{"a|public.tickets_id_seq|bigint|100|10", "d|public.notes_id_seq|bigint|1|1"}, `
SELECT a.attidentity::text, pg_get_serial_sequence(a.attrelid::regclass::text, a.attname), format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement
FROM pg_attribute a JOIN pg_sequence s ON s.seqrelid = pg_get_serial_sequence(a.attrelid::regclass::text, a.attname)::regclass
WHERE a.attrelid IN ('public.tickets'::regclass, 'public.notes'::regclass) AND a.attname = 'id' ORDER BY a.attrelid::regclass::text DESC`)
				var last, next int64
				if err := e.db.QueryRow(ctx(), "SELECT max(id) FROM public.tickets").Scan(&last); err != nil {
					e.t.Fatal(err)
				}
				if err := nw.QueryRow(ctx(), "INSERT INTO tickets (title) VALUES ('after') RETURNING id").Scan(&next); err != nil {
					e.t.Fatal(err)
				}
				if next != last+10 {
					e.t.Fatalf("identity after complete gave %d, want %d", next, last+10)
				}
				e.expectErr(nw, "non-DEFAULT", "INSERT INTO tickets (id, title) VALUES (1, 'x')")
				e.expectRows(nw, []string{"true"}, "WITH i AS (INSERT INTO notes (ticket_id) VALUES ($1) RETURNING id) SELECT id > 50 FROM i", next)
			},
		},
		{
			name: "composite_pk",
			setup: []string{
				`CREATE TABLE shelves (room int, pos int, label text, PRIMARY KEY (room, pos))`,
				`CREATE TABLE books (id int PRIMARY KEY, room int, pos int, FOREIGN KEY (room, pos) REFERENCES shelves (room, pos) MATCH FULL)`,
				`INSERT INTO shelves SELECT g / 5, g % 5, 's' || g FROM generate_series(0, 49) g`,
				`INSERT INTO books SELECT g, g % 10, g % 5 FROM generate_series(1, 60) g`,
			},
			yaml: `operations: [ { alter_column: { table: shelves, column: room, type: bigint } } ]`,
			during: rerun(func(e *env, old, nw *pgx.Conn, k int) {
				e.exec(nw, "INSERT INTO shelves VALUES ($1, 1, 'new')", 100+k)
				e.exec(old, "INSERT INTO books VALUES ($1, $2, 1)", 1000+k, 100+k)
				e.expectErr(old, "duplicate key", "INSERT INTO shelves VALUES ($1, 1, 'dup')", 100+k)
				e.expectErr(nw, "foreign key", "INSERT INTO books VALUES ($1, $2, 2)", 2000+k, 100+k)
			}),
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"shelves_pkey|room,pos|bigint"}, `
SELECT con.conname, string_agg(a.attname, ',' ORDER BY k.ord), min(format_type(a.atttypid, NULL)) FILTER (WHERE a.attname = 'room')
FROM pg_constraint con, unnest(con.conkey) WITH ORDINALITY k(attnum, ord), pg_attribute a
WHERE a.attrelid = con.conrelid AND a.attnum = k.attnum AND con.conrelid = 'public.shelves'::regclass AND con.contype = 'p' GROUP BY con.conname`)
				e.expectRows(e.db, []string{"FOREIGN KEY (room, pos) REFERENCES shelves(room, pos) MATCH FULL|true"},
					"SELECT pg_get_constraintdef(oid), convalidated FROM pg_constraint WHERE conname = 'books_room_pos_fkey'")
				e.expectRows(e.db, []string{"54|64"}, "SELECT (SELECT count(*) FROM shelves), (SELECT count(*) FROM books)")
			},
		},
		{
			name: "referenced_unique_column",
			setup: []string{
				`CREATE TABLE currencies (id int PRIMARY KEY, code varchar(3) NOT NULL CONSTRAINT currencies_code_key UNIQUE)`,
				`CREATE TABLE prices (id int PRIMARY KEY, currency varchar(3) REFERENCES currencies (code) ON UPDATE CASCADE, amount numeric)`,
				`INSERT INTO currencies VALUES (1, 'EUR'), (2, 'USD'), (3, 'JPY')`,
				`INSERT INTO prices SELECT g, (ARRAY['EUR', 'USD', 'JPY'])[1 + g % 3], g FROM generate_series(1, 30) g`,
			},
			yaml: `operations: [ { alter_column: { table: currencies, column: code, type: text } } ]`,
			during: rerun(func(e *env, old, nw *pgx.Conn, k int) {
				g, c := fmt.Sprintf("G%d", k), fmt.Sprintf("C%d", k)
				e.exec(nw, "INSERT INTO currencies VALUES ($1, $2)", 10+k, g)
				e.exec(old, "INSERT INTO prices VALUES ($1, $2, 1)", 100+2*k, g)
				e.exec(nw, "INSERT INTO prices VALUES ($1, $2, 2)", 101+2*k, g)
				e.exec(old, "UPDATE currencies SET code = $1 WHERE id = $2", c, 10+k)
				e.expectRows(nw, []string{"2"}, "SELECT count(*) FROM prices WHERE currency = $1", c)
				e.exec(nw, "UPDATE currencies SET code = $1 WHERE id = $2", g, 10+k)
				e.expectRows(old, []string{"2"}, "SELECT count(*) FROM prices WHERE currency = $1", g)
				e.expectErr(nw, "foreign key", "INSERT INTO prices VALUES (99, 'XXX', 1)")
				e.expectErr(nw, "duplicate key", "INSERT INTO currencies VALUES (99, 'EUR')")
			}),
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"text"}, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.currencies'::regclass AND attname = 'code'")
				e.expectRows(e.db, []string{"u|currencies_code_key|true", "f|prices_currency_fkey|true"}, `
SELECT contype::text, conname, convalidated FROM pg_constraint WHERE conrelid IN ('public.currencies'::regclass, 'public.prices'::regclass) AND contype IN ('u', 'f') ORDER BY contype DESC`)
				e.expectRows(e.db, []string{"NO"}, "SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'currencies' AND column_name = 'code'")
				e.expectErr(nw, "foreign key", "INSERT INTO prices VALUES (998, 'XXX', 1)")
			},
		},
		{
			// Names that need quoting everywhere, the DO blocks' literals
			// included.
			name: "hostile_names",
			setup: []string{
				`CREATE TABLE "Acc't ""x""" ("Key""1" serial PRIMARY KEY, v text)`,
				`CREATE TABLE "Ord;" (id int PRIMARY KEY, "ref)" int CONSTRAINT "fk ""q""" REFERENCES "Acc't ""x""" ("Key""1"))`,
				`INSERT INTO "Acc't ""x""" (v) SELECT 'v' || g FROM generate_series(1, 10) g`,
				`INSERT INTO "Ord;" SELECT g, g FROM generate_series(1, 10) g`,
			},
			yaml: `operations: [ { alter_column: { table: "Acc't \"x\"", column: "Key\"1", type: bigint } } ]`,
			during: rerun(func(e *env, old, nw *pgx.Conn, k int) {
				var id int64
				if err := nw.QueryRow(ctx(), `INSERT INTO "Acc't ""x""" (v) VALUES ('n') RETURNING "Key""1"`).Scan(&id); err != nil {
					e.t.Fatal(err)
				}
				e.exec(old, `INSERT INTO "Ord;" VALUES ($1, $2)`, 100+k, id)
				e.expectErr(nw, "fk", `INSERT INTO "Ord;" VALUES ($1, 999)`, 200+k)
			}),
			after: func(e *env, nw *pgx.Conn) {
				keyCatalog(e, `"Acc't ""x"""`, `Key"1`, "bigint", `Acc't "x"_pkey`, `fk "q"`)
				e.expectRows(nw, []string{"bigint"}, `SELECT format_type(seqtypid, NULL) FROM pg_sequence WHERE seqrelid = pg_get_serial_sequence('public."Acc''t ""x"""', 'Key"1')::regclass`)
				e.expectRows(nw, []string{"15"}, `INSERT INTO "Acc't ""x""" (v) VALUES ('after') RETURNING "Key""1"`)
			},
		},
		{
			// Not a key: a serial column's sequence moves with it all the same.
			name:  "serial_non_key_column",
			setup: []string{`CREATE TABLE tallies (id int PRIMARY KEY, n serial)`, `INSERT INTO tallies (id) SELECT g FROM generate_series(1, 10) g`},
			yaml:  `operations: [ { alter_column: { table: tallies, column: n, type: bigint } } ]`,
			during: rerun(func(e *env, old, nw *pgx.Conn, k int) {
				e.exec(old, "INSERT INTO tallies (id) VALUES ($1)", 100+2*k)
				e.exec(nw, "INSERT INTO tallies (id) VALUES ($1)", 101+2*k)
				e.expectRows(old, []string{"0"}, "SELECT count(*) FROM (SELECT n FROM tallies GROUP BY n HAVING count(*) > 1) d")
			}),
			after: func(e *env, nw *pgx.Conn) {
				e.expectRows(e.db, []string{"public.tallies_n_seq|bigint|nextval('tallies_n_seq'::regclass)"},
					"SELECT pg_get_serial_sequence('public.tallies', 'n'), format_type(seqtypid, NULL), pg_get_expr(adbin, adrelid) FROM pg_sequence, pg_attrdef WHERE seqrelid = 'public.tallies_n_seq'::regclass AND adrelid = 'public.tallies'::regclass")
				e.expectRows(nw, []string{"19"}, "INSERT INTO tallies (id) VALUES (1000) RETURNING n")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runLifecycle(t, tc)
		})
	}
}

// TestPrimaryKeyRewriteUnderLoad writes through the old version while the
// key of accounts changes type (expand, backfill, index build and foreign
// key validation), then through both versions; the old version's writers
// stop (complete is for when no old code is left: a prepared statement of
// the old version would see its result type change), and complete runs
// while the new version's writers go on. No insert or update may fail.
func TestPrimaryKeyRewriteUnderLoad(t *testing.T) {
	t.Parallel()
	// Enough rows that the backfill, the index build and the validations
	// take a while under the writers.
	e := newEnv(t, append(accountsSetup,
		`INSERT INTO accounts (name, parent_id) SELECT 'bulk', 1 + g % 40 FROM generate_series(1, 30000) g`,
		`INSERT INTO orders (account_id, amount) SELECT 41 + g % 30000, 0 FROM generate_series(1, 60000) g`,
		`CREATE INDEX orders_account_idx ON orders (account_id)`)...)
	yaml := `operations: [ { alter_column: { table: accounts, column: id, type: bigint } } ]`
	vs := "public_pk_load"

	var (
		stop    atomic.Bool
		stopOld atomic.Bool
		oldWG   sync.WaitGroup
		wg      sync.WaitGroup
		mu      sync.Mutex
		failed  []string
		writes  atomic.Int64
		newVers atomic.Bool
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if len(failed) < 10 {
			failed = append(failed, pg.Explain(err))
		}
	}
	writer := func(searchPath string, waitForNew bool, stop *atomic.Bool, wg *sync.WaitGroup) {
		defer wg.Done()
		for waitForNew && !newVers.Load() && !stop.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		conn, err := pgtest.ConnectOptions(context.Background(), e.url, pg.Options{SearchPath: searchPath, ApplicationName: "online-test-app"})
		if err != nil {
			fail(err)
			return
		}
		defer conn.Close(context.Background())
		for i := 0; !stop.Load(); i++ {
			err := pgx.BeginFunc(ctx(), conn, func(tx pgx.Tx) error {
				var id int64
				if err := tx.QueryRow(ctx(), "INSERT INTO accounts (name, parent_id) VALUES ('w', 1 + $1::int % 40) RETURNING id", i).Scan(&id); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx(), "INSERT INTO orders (account_id, amount) VALUES ($1, 1), (1 + $2::int % 40, 1)", id, i); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx(), "UPDATE accounts SET name = name || '.' WHERE id = $1", id); err != nil {
					return err
				}
				// A key change, cascaded to the order through the old and
				// the new foreign key alike.
				_, err := tx.Exec(ctx(), "UPDATE accounts SET id = -id WHERE id = $1", id)
				return err
			})
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return
				}
				fail(err)
				return
			}
			writes.Add(1)
		}
	}
	for i := 0; i < 2; i++ {
		wg.Add(1)
		oldWG.Add(1)
		go writer("public", false, &stopOld, &oldWG)
		go writer(vs, true, &stop, &wg)
	}
	res, err := e.engine().Start(context.Background(), parse(t, "pk_load", yaml))
	if err != nil {
		stop.Store(true)
		stopOld.Store(true)
		oldWG.Wait()
		wg.Wait()
		t.Fatalf("start: %s", pg.Explain(err))
	}
	if res.VersionSchema != vs {
		t.Fatalf("version schema %q", res.VersionSchema)
	}
	newVers.Store(true)
	time.Sleep(300 * time.Millisecond)
	stopOld.Store(true)
	oldWG.Wait()
	completeErr := func() error { _, err := e.engine().Complete(context.Background()); return err }()
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if completeErr != nil {
		t.Fatalf("complete: %s", pg.Explain(completeErr))
	}
	if len(failed) > 0 {
		t.Fatalf("%d writes succeeded, but some failed:\n%s", writes.Load(), strings.Join(failed, "\n"))
	}
	if writes.Load() == 0 {
		t.Fatal("no write went through")
	}
	keyCatalog(e, "accounts", "id", "bigint", "accounts_pkey", "orders_account_fk", "accounts_parent_id_fkey")
	n := writes.Load()
	e.expectRows(e.db, []string{fmt.Sprint(30040 + n)}, "SELECT count(*) FROM accounts")
	e.expectRows(e.db, []string{fmt.Sprint(60100 + 2*n)}, "SELECT count(*) FROM orders")
	t.Logf("%d write transactions, none failed", n)
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = o.account_id)")
	e.expectRows(e.db, []string{fmt.Sprint(n)}, "SELECT count(*) FROM orders WHERE account_id < 0")
	e.expectRows(e.db, []string{"true"}, "SELECT last_value >= (SELECT max(id) FROM accounts) FROM accounts_id_seq")
}

// TestPrimaryKeyCompleteBlocked: complete of a key rewrite locks the key's
// table and every referencing table in one transaction. When an application
// transaction holds one of them past the lock retry deadline, complete
// fails with nothing changed, the migration stays where it was (both
// versions serve), and complete run again once the lock is gone finishes
// it; a rollback at that point would be just as possible.
func TestPrimaryKeyCompleteBlocked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, accountsSetup...)
	res := e.start("wide_key", `operations: [ { alter_column: { table: accounts, column: id, type: bigint, up: "id::bigint", down: "id::int" } } ]`)
	before := e.dump()

	holder := e.version("public")
	tx, err := holder.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(context.Background(), "SELECT count(*) FROM orders"); err != nil {
		t.Fatal(err)
	}
	eng := e.engine(func(c *phases.Config) {
		c.LockTimeout = 50 * time.Millisecond
		c.LockRetryDeadline = 700 * time.Millisecond
	})
	_, err = eng.Complete(context.Background())
	var lt *pg.LockTimeoutError
	if err == nil || !errors.As(err, &lt) {
		t.Fatalf("complete with orders locked: want a lock timeout error, got %v", pg.Explain(err))
	}
	if got := e.dump(); got != before {
		t.Fatal("a complete that timed out on its locks changed the schema")
	}
	// Both versions still serve, writes included.
	nw := e.version(res.VersionSchema)
	e.exec(nw, "INSERT INTO accounts (name) VALUES ('after the failed complete')")
	e.expectRows(nw, []string{"bigint"}, "SELECT pg_typeof(id)::text FROM accounts WHERE name = 'after the failed complete'")
	if err := tx.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}

	e.complete()
	keyCatalog(e, "accounts", "id", "bigint", "accounts_pkey", "orders_account_fk", "accounts_parent_id_fkey")
	e.expectRows(e.db, []string{"41|100"}, "SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM orders)")
}
