package lifecycletest

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Move is one of the four moves of data between tables (issue 26), with
// what a test needs to hold both versions to it: Old and New read the moved
// data through the old and the new version, row by row in the same order
// and shape; they must return the same rows whenever no write is under way.
type Move struct {
	Case
	Old, New string
	// OldWrite and NewWrite are statements an application writes through
	// each version; $1 is a number that differs on every call.
	OldWrite, NewWrite []string
}

// Same fails the test unless the moved data reads the same through both
// versions.
func (e *Env) Same(m Move, old, nw *pgx.Conn) {
	e.T.Helper()
	o, n := e.Rows(old, m.Old), e.Rows(nw, m.New)
	if strings.Join(o, "\n") == strings.Join(n, "\n") {
		return
	}
	var diff []string
	for i := 0; i < len(o) || i < len(n); i++ {
		var a, b string
		if i < len(o) {
			a = o[i]
		}
		if i < len(n) {
			b = n[i]
		}
		if a != b && len(diff) < 10 {
			diff = append(diff, fmt.Sprintf("old %q, new %q", a, b))
		}
	}
	e.T.Fatalf("%s: the versions disagree (%d rows old, %d new); first differences:\n%s", m.Name, len(o), len(n), strings.Join(diff, "\n"))
}

func (e *Env) id(conn *pgx.Conn, sql string, args ...any) int64 {
	e.T.Helper()
	var id int64
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&id); err != nil {
		e.T.Fatalf("%s: %v", sql, err)
	}
	return id
}

// Moves are the four moves: a column into a new table, a table split in
// two, a 1:1 side table folded into its parent, a column moved to the table
// its foreign key points to. Each starts from UsersTable and UsersRows.
func Moves() []Move {
	return []Move{
		{
			Case: Case{
				Name:  "move_email_to_accounts",
				Setup: []string{"ALTER TABLE users ALTER COLUMN email DROP NOT NULL", "UPDATE users SET email = NULL WHERE id % 10 = 0"},
				YAML: `
operations:
  - create_table:
      name: accounts
      columns:
        - { name: id, type: bigserial, pk: true }
        - { name: user_id, type: bigint, unique: true, references: { name: accounts_user_fk, table: users, column: id, on_delete: CASCADE } }
        - { name: email, type: text }
      from:
        table: users
        values: { user_id: users.id, email: users.email }
        where: accounts.user_id = users.id
        down: { email: accounts.email }
  - drop_column: { table: users, column: email }
`,
				During: func(e *Env, old, nw *pgx.Conn, _ bool) {
					m := Moves()[0]
					e.Same(m, old, nw)
					// Old version: insert, update, clear, delete.
					id := e.id(old, "INSERT INTO users (email, name) VALUES ('o@x', 'o') RETURNING id")
					e.ExpectRows(nw, []string{"o@x"}, "SELECT email FROM accounts WHERE user_id = $1", id)
					e.Exec(old, "UPDATE users SET email = 'u2b@x' WHERE id = 2")
					e.ExpectRows(nw, []string{"u2b@x"}, "SELECT email FROM accounts WHERE user_id = 2")
					e.Exec(old, "UPDATE users SET email = NULL WHERE id = 7")
					e.ExpectRows(nw, []string{"0"}, "SELECT count(*) FROM accounts WHERE user_id = 7")
					e.Exec(old, "DELETE FROM users WHERE id = 5")
					e.ExpectRows(nw, []string{"0"}, "SELECT count(*) FROM accounts WHERE user_id = 5")
					// New version: a user, then its account.
					id = e.id(nw, "INSERT INTO users (name) VALUES ('n') RETURNING id")
					e.Exec(nw, "INSERT INTO accounts (user_id, email) VALUES ($1, 'n@x')", id)
					e.ExpectRows(old, []string{"n@x"}, "SELECT email FROM users WHERE id = $1", id)
					e.Exec(nw, "UPDATE accounts SET email = 'u3b@x' WHERE user_id = 3")
					e.ExpectRows(old, []string{"u3b@x"}, "SELECT email FROM users WHERE id = 3")
					e.Exec(nw, "DELETE FROM accounts WHERE user_id = 4")
					e.ExpectRows(old, []string{""}, "SELECT coalesce(email, '') FROM users WHERE id = 4")
					e.Exec(nw, "DELETE FROM users WHERE id = 6")
					e.ExpectRows(old, []string{"0"}, "SELECT count(*) FROM users WHERE id = 6")
					e.Same(m, old, nw)
				},
				After: func(e *Env, nw *pgx.Conn) {
					e.ExpectErr(e.DB, "does not exist", "SELECT email FROM public.users")
					e.ExpectRows(e.DB, []string{"u2b@x"}, "SELECT email FROM public.accounts WHERE user_id = 2")
					e.ExpectRows(e.DB, []string{"0"}, "SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('public.users'::regclass, 'public.accounts'::regclass) AND NOT tgisinternal")
					e.ExpectRows(e.DB, []string{"0"}, "SELECT count(*) FROM public.users u WHERE u.id % 10 <> 0 AND u.id NOT IN (4, 7) AND NOT EXISTS (SELECT 1 FROM public.accounts a WHERE a.user_id = u.id)")
				},
			},
			Old:      "SELECT id, coalesce(email, '-') FROM users ORDER BY id",
			New:      "SELECT u.id, coalesce(a.email, '-') FROM users u LEFT JOIN accounts a ON a.user_id = u.id ORDER BY u.id",
			OldWrite: []string{"UPDATE users SET email = 'w' || $1::text || '@x' WHERE id = 1 + $1::text::int % 40", "INSERT INTO users (email) VALUES ('o' || $1::text || '@x')"},
			NewWrite: []string{"UPDATE accounts SET email = 'v' || $1::text || '@x' WHERE user_id = 1 + ($1::text::int * 7) % 40",
				"WITH u AS (INSERT INTO users (name) VALUES ('n') RETURNING id) INSERT INTO accounts (user_id, email) SELECT id, 'n' || $1::text || '@x' FROM u"},
		},
		{
			Case: Case{
				Name: "split_orders_addresses",
				Setup: []string{"CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint, total int NOT NULL DEFAULT 0, street text, city text)",
					"INSERT INTO orders (user_id, total, street, city) SELECT g, g * 10, CASE WHEN g % 4 <> 0 THEN g || ' Main St' END, CASE WHEN g % 4 <> 0 THEN 'City' || g % 3 END FROM generate_series(1, 40) g"},
				YAML: `
operations:
  - create_table:
      name: order_addresses
      columns:
        - { name: order_id, type: bigint, pk: true, references: { name: order_addresses_order_fk, table: orders, column: id, on_delete: CASCADE } }
        - { name: street, type: text, nullable: true }
        - { name: city, type: text, nullable: true }
      from:
        table: orders
        values: { order_id: orders.id, street: orders.street, city: orders.city }
        where: order_addresses.order_id = orders.id
        down: { street: order_addresses.street, city: order_addresses.city }
  - drop_column: { table: orders, column: street }
  - drop_column: { table: orders, column: city }
`,
				During: func(e *Env, old, nw *pgx.Conn, _ bool) {
					m := Moves()[1]
					e.Same(m, old, nw)
					id := e.id(old, "INSERT INTO orders (user_id, street, city) VALUES (1, 'Old St', 'Oldtown') RETURNING id")
					e.ExpectRows(nw, []string{"Old St|Oldtown"}, "SELECT street, city FROM order_addresses WHERE order_id = $1", id)
					e.Exec(old, "UPDATE orders SET city = 'Elsewhere' WHERE id = 1")
					e.ExpectRows(nw, []string{"1 Main St|Elsewhere"}, "SELECT street, city FROM order_addresses WHERE order_id = 1")
					e.Exec(old, "UPDATE orders SET street = 'Found St', city = 'Found' WHERE id = 4")
					e.ExpectRows(nw, []string{"Found St|Found"}, "SELECT street, city FROM order_addresses WHERE order_id = 4")
					id = e.id(nw, "INSERT INTO orders (user_id, total) VALUES (2, 5) RETURNING id")
					e.ExpectRows(nw, []string{"0"}, "SELECT count(*) FROM order_addresses WHERE order_id = $1", id)
					e.Exec(nw, "INSERT INTO order_addresses (order_id, street, city) VALUES ($1, 'New St', 'Newtown')", id)
					e.ExpectRows(old, []string{"New St|Newtown|5"}, "SELECT street, city, total FROM orders WHERE id = $1", id)
					e.Exec(nw, "UPDATE order_addresses SET street = NULL WHERE order_id = 2")
					e.ExpectRows(old, []string{"|City2"}, "SELECT coalesce(street, ''), city FROM orders WHERE id = 2")
					e.Exec(nw, "DELETE FROM order_addresses WHERE order_id = 3")
					e.ExpectRows(old, []string{"|"}, "SELECT coalesce(street, ''), coalesce(city, '') FROM orders WHERE id = 3")
					e.Exec(old, "DELETE FROM orders WHERE id = 5")
					e.ExpectRows(nw, []string{"0"}, "SELECT count(*) FROM order_addresses WHERE order_id = 5")
					e.Same(m, old, nw)
				},
				After: func(e *Env, nw *pgx.Conn) {
					e.ExpectErr(e.DB, "does not exist", "SELECT street FROM public.orders")
					e.ExpectRows(e.DB, []string{"1 Main St|Elsewhere"}, "SELECT street, city FROM public.order_addresses WHERE order_id = 1")
					e.ExpectRows(e.DB, []string{"0"}, "SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('public.orders'::regclass, 'public.order_addresses'::regclass) AND NOT tgisinternal")
				},
			},
			Old:      "SELECT id, total, coalesce(street, '-'), coalesce(city, '-') FROM orders ORDER BY id",
			New:      "SELECT o.id, o.total, coalesce(a.street, '-'), coalesce(a.city, '-') FROM orders o LEFT JOIN order_addresses a ON a.order_id = o.id ORDER BY o.id",
			OldWrite: []string{"UPDATE orders SET street = 's' || $1::text, total = total + 1 WHERE id = 1 + $1::text::int % 40", "INSERT INTO orders (user_id, street, city) VALUES (1, 'o' || $1::text, 'c')"},
			NewWrite: []string{"UPDATE order_addresses SET city = 'c' || $1::text WHERE order_id = 1 + ($1::text::int * 7) % 40",
				"WITH o AS (INSERT INTO orders (user_id, total) VALUES (2, $1::text::int) RETURNING id) INSERT INTO order_addresses (order_id, street) SELECT id, 'n' || $1::text FROM o"},
		},
		{
			Case: Case{
				Name: "fold_profiles_into_users",
				Setup: []string{"CREATE TABLE profiles (user_id bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE, bio text)",
					"INSERT INTO profiles SELECT id, 'bio ' || id FROM users WHERE id <= 40"},
				YAML: `
operations:
  - add_column:
      table: users
      column: { name: bio, type: text, nullable: true }
      from:
        table: profiles
        value: profiles.bio
        where: profiles.user_id = users.id
        down: { bio: users.bio }
  - drop_table: { name: profiles }
`,
				During: func(e *Env, old, nw *pgx.Conn, exclusive bool) {
					m := Moves()[2]
					e.Same(m, old, nw)
					e.Exec(old, "UPDATE profiles SET bio = 'b1x' WHERE user_id = 1")
					e.ExpectRows(nw, []string{"b1x"}, "SELECT bio FROM users WHERE id = 1")
					e.Exec(old, "INSERT INTO profiles VALUES (45, 'p45') ON CONFLICT (user_id) DO UPDATE SET bio = 'p45'")
					e.ExpectRows(nw, []string{"p45"}, "SELECT bio FROM users WHERE id = 45")
					e.Exec(old, "DELETE FROM profiles WHERE user_id = 2")
					e.ExpectRows(nw, []string{""}, "SELECT coalesce(bio, '') FROM users WHERE id = 2")
					e.Exec(nw, "UPDATE users SET bio = 'nb3' WHERE id = 3")
					e.ExpectRows(old, []string{"nb3"}, "SELECT bio FROM profiles WHERE user_id = 3")
					id := e.id(old, "INSERT INTO users (email) VALUES ('o@x') RETURNING id")
					e.ExpectRows(nw, []string{""}, "SELECT coalesce(bio, '') FROM users WHERE id = $1", id)
					e.Exec(old, "INSERT INTO profiles VALUES ($1, 'late')", id)
					e.ExpectRows(nw, []string{"late"}, "SELECT bio FROM users WHERE id = $1", id)
					e.Exec(nw, "DELETE FROM users WHERE id = 6")
					e.ExpectRows(old, []string{"0"}, "SELECT count(*) FROM profiles WHERE user_id = 6")
					if exclusive {
						e.ExpectErr(nw, "does not exist", "SELECT 1 FROM profiles")
					}
					e.Same(m, old, nw)
				},
				After: func(e *Env, nw *pgx.Conn) {
					e.ExpectErr(e.DB, "does not exist", "SELECT 1 FROM public.profiles")
					e.ExpectRows(e.DB, []string{"b1x", "nb3"}, "SELECT bio FROM public.users WHERE id IN (1, 3) ORDER BY id")
					e.ExpectRows(e.DB, []string{"0"}, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.users'::regclass AND NOT tgisinternal")
				},
			},
			Old:      "SELECT u.id, coalesce(p.bio, '-') FROM users u LEFT JOIN profiles p ON p.user_id = u.id ORDER BY u.id",
			New:      "SELECT id, coalesce(bio, '-') FROM users ORDER BY id",
			OldWrite: []string{"UPDATE profiles SET bio = 'w' || $1::text WHERE user_id = 1 + $1::text::int % 40", "WITH u AS (INSERT INTO users (email) VALUES ('o' || $1::text) RETURNING id) INSERT INTO profiles SELECT id, 'p' || $1::text FROM u"},
			NewWrite: []string{"UPDATE users SET bio = 'v' || $1::text WHERE id = 1 + ($1::text::int * 7) % 40", "UPDATE users SET name = 'x' || $1::text WHERE id = 1 + ($1::text::int * 3) % 40"},
		},
		{
			Case: Case{
				Name: "move_tier_to_users",
				Setup: []string{"CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE, tier text, total int NOT NULL DEFAULT 0)",
					"CREATE INDEX orders_user_id_idx ON orders (user_id)",
					"INSERT INTO orders (user_id, tier) SELECT u, 't' || u % 3 FROM generate_series(1, 30) u, generate_series(1, 2)"},
				YAML: `
operations:
  - add_column:
      table: users
      column: { name: tier, type: text, nullable: true }
      from:
        table: orders
        value: orders.tier
        where: orders.user_id = users.id
        several: same
        down: { tier: users.tier }
  - drop_column: { table: orders, column: tier }
`,
				During: func(e *Env, old, nw *pgx.Conn, _ bool) {
					m := Moves()[3]
					e.Same(m, old, nw)
					e.Exec(old, "UPDATE orders SET tier = 'gold' WHERE id = (SELECT min(id) FROM orders WHERE user_id = 1)")
					e.ExpectRows(nw, []string{"gold"}, "SELECT tier FROM users WHERE id = 1")
					e.ExpectRows(old, []string{"gold"}, "SELECT DISTINCT tier FROM orders WHERE user_id = 1")
					e.Exec(nw, "UPDATE users SET tier = 'silver' WHERE id = 2")
					e.ExpectRows(old, []string{"silver"}, "SELECT DISTINCT tier FROM orders WHERE user_id = 2")
					id := e.id(nw, "INSERT INTO orders (user_id) VALUES (2) RETURNING id")
					e.ExpectRows(old, []string{"silver"}, "SELECT tier FROM orders WHERE id = $1", id)
					e.Exec(old, "INSERT INTO orders (user_id, tier) VALUES (40, 'new')")
					e.ExpectRows(nw, []string{"new"}, "SELECT tier FROM users WHERE id = 40")
					e.Exec(old, "DELETE FROM orders WHERE user_id = 3")
					e.ExpectRows(nw, []string{""}, "SELECT coalesce(tier, '') FROM users WHERE id = 3")
					e.Exec(old, "UPDATE orders SET user_id = 41 WHERE user_id = 4")
					e.ExpectRows(nw, []string{"|t1"}, "SELECT coalesce(tier, ''), (SELECT tier FROM users WHERE id = 41) FROM users WHERE id = 4")
					id = e.id(old, "INSERT INTO users (email) VALUES ('o@x') RETURNING id")
					e.ExpectRows(nw, []string{""}, "SELECT coalesce(tier, '') FROM users WHERE id = $1", id)
					e.Same(m, old, nw)
				},
				After: func(e *Env, nw *pgx.Conn) {
					e.ExpectErr(e.DB, "does not exist", "SELECT tier FROM public.orders")
					e.ExpectRows(e.DB, []string{"gold|silver"}, "SELECT (SELECT tier FROM public.users WHERE id = 1), (SELECT tier FROM public.users WHERE id = 2)")
					e.ExpectRows(e.DB, []string{"0"}, "SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('public.users'::regclass, 'public.orders'::regclass) AND NOT tgisinternal")
				},
			},
			// A user's tier is its orders' (all equal), or none without orders.
			Old:      "SELECT u.id, coalesce(min(o.tier), '-'), coalesce(max(o.tier), '-') FROM users u LEFT JOIN orders o ON o.user_id = u.id GROUP BY u.id ORDER BY u.id",
			New:      "SELECT id, coalesce(tier, '-'), coalesce(tier, '-') FROM users ORDER BY id",
			OldWrite: []string{"UPDATE orders SET tier = 'w' || $1::text WHERE user_id = 1 + $1::text::int % 30", "INSERT INTO orders (user_id, tier) SELECT 1 + $1::text::int % 30, tier FROM orders WHERE user_id = 1 + $1::text::int % 30 LIMIT 1"},
			NewWrite: []string{"UPDATE users SET tier = 'v' || $1::text WHERE id = 1 + ($1::text::int * 7) % 30", "INSERT INTO orders (user_id, total) VALUES (1 + ($1::text::int * 11) % 30, $1::text::int)"},
		},
	}
}
