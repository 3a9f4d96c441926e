package phases_test

// Moving data between tables (issue 26): the start's check of the partner
// rules, rollback leaving the source as it was, and application writers on
// both versions at once.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/onlinepg/online/internal/lifecycletest"
	"github.com/onlinepg/online/operations"
)

func moveByName(t *testing.T, name string) lifecycletest.Move {
	for _, m := range lifecycletest.Moves() {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no move %q", name)
	return lifecycletest.Move{}
}

// TestMoveRefusedAtStart: data that breaks the partner rule the file
// states makes start fail before it changes anything, naming the file, the
// operation and the field, with the count and some keys.
func TestMoveRefusedAtStart(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, move string
		setup      []string
		from, to   string // replaced in the move's file
		field      string
		msg        []string
	}{
		{name: "several_partners", move: "move_tier_to_users", from: "several: same", to: "several: refuse",
			field: "from.several", msg: []string{"30 rows of users have more than one row of orders", "keys: 1, 2, 3, 4, 5, ..."}},
		{name: "several_that_disagree", move: "move_tier_to_users", setup: []string{"UPDATE orders SET tier = 'odd' WHERE id IN (SELECT max(id) FROM orders WHERE user_id IN (7, 9) GROUP BY user_id)",
			// Two NULLs agree; a NULL and a value do not.
			"UPDATE orders SET tier = NULL WHERE user_id = 8", "UPDATE orders SET tier = NULL WHERE id = (SELECT max(id) FROM orders WHERE user_id = 10)"},
			field: "from.several", msg: []string{"3 rows of users have rows of orders that disagree", "keys: 7, 9, 10"}},
		{name: "missing_partner", move: "fold_profiles_into_users", from: "down: { bio: users.bio }", to: "down: { bio: users.bio }\n        missing: refuse",
			field: "from.missing", msg: []string{"10 rows of users have no row of profiles", "keys: 41, 42, 43, 44, 45, ..."}},
		{name: "nothing_to_move", move: "move_email_to_accounts", from: "down: { email: accounts.email }", to: "down: { email: accounts.email }\n        missing: refuse",
			field: "from.missing", msg: []string{"5 rows of users have nothing to move", "keys: 10, 20, 30, 40, 50"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := moveByName(t, c.move)
			yaml := m.YAML
			if c.from != "" {
				if !strings.Contains(yaml, c.from) {
					t.Fatalf("the move's file has no %q", c.from)
				}
				yaml = strings.Replace(yaml, c.from, c.to, 1)
			}
			e := newEnv(t, append(append([]string{usersTable, usersRows}, m.Setup...), c.setup...)...)
			before := e.dump() + rowsDigest(e, "users")
			eng := e.engine()
			_, err := eng.Start(context.Background(), parse(t, c.name, yaml))
			var oe *operations.Error
			if !errors.As(err, &oe) {
				t.Fatalf("start: %v, want an *operations.Error", err)
			}
			if oe.Op != 1 || oe.Field != c.field || !strings.HasPrefix(err.Error(), c.name+".yaml: ") {
				t.Errorf("error %q names op %d field %q, want op 1 field %q", err, oe.Op, oe.Field, c.field)
			}
			for _, want := range c.msg {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if after := e.dump() + rowsDigest(e, "users"); after != before {
				t.Fatalf("a refused start changed the database:\n--- before\n%s\n--- after\n%s", before, after)
			}
		})
	}
}

// rowsDigest is every row of the named tables, in key order.
func rowsDigest(e *env, tables ...string) string {
	var b strings.Builder
	for _, t := range tables {
		for _, r := range e.rows(e.db, fmt.Sprintf("SELECT t::text FROM %s t ORDER BY 1", t)) {
			b.WriteString(t + " " + r + "\n")
		}
	}
	return b.String()
}

// TestMoveRollbackLeavesSource: start then rollback of each move leaves
// the schema (pg_dump) and every row of the tables as they were.
func TestMoveRollbackLeavesSource(t *testing.T) {
	t.Parallel()
	tables := map[string][]string{
		"move_email_to_accounts":   {"users"},
		"split_orders_addresses":   {"users", "orders"},
		"fold_profiles_into_users": {"users", "profiles"},
		"move_tier_to_users":       {"users", "orders"},
	}
	for _, m := range lifecycletest.Moves() {
		t.Run(m.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, append([]string{usersTable, usersRows}, m.Setup...)...)
			dump, rows := e.dump(), rowsDigest(e, tables[m.Name]...)
			e.start(m.Name, m.YAML)
			e.rollback()
			if after := e.dump(); after != dump {
				t.Fatalf("rollback changed the schema:\n--- before\n%s\n--- after\n%s", dump, after)
			}
			if after := rowsDigest(e, tables[m.Name]...); after != rows {
				t.Fatalf("rollback changed rows:\n--- before\n%s\n--- after\n%s", rows, after)
			}
		})
	}
}

// retryable is what an application retries: the triggers of a move write
// both tables, so writers of the two versions can deadlock each other.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// writers runs n sessions on each search_path, each running its statements
// in turn with a fresh number, until stop is closed; it returns the writes
// that committed and the first error that is not retryable.
type writers struct {
	wg     sync.WaitGroup
	done   atomic.Int64
	failed atomic.Pointer[error]
	seq    atomic.Int64
	stop   chan struct{}
}

func startWriters(e *env, searchPath string, n int, stmts []string, w *writers) {
	for i := 0; i < n; i++ {
		conn := e.version(searchPath)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for k := 0; ; k++ {
				select {
				case <-w.stop:
					return
				default:
				}
				// A breath between writes, as an application's requests
				// have: the expand's brief table locks need a gap.
				time.Sleep(2 * time.Millisecond)
				num := fmt.Sprint(w.seq.Add(1))
				_, err := conn.Exec(context.Background(), stmts[k%len(stmts)], num)
				switch {
				case err == nil:
					w.done.Add(1)
				case retryable(err):
				default:
					err = fmt.Errorf("%s (search_path %s): %w", stmts[k%len(stmts)], searchPath, err)
					w.failed.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
}

// TestMoveConcurrentWriters: writers on the old version run through start
// (the backfill walks under them), then writers on both versions at once;
// once they stop, every row reads the same through both versions, and
// after complete the new version holds what both showed.
func TestMoveConcurrentWriters(t *testing.T) {
	t.Parallel()
	for _, m := range lifecycletest.Moves() {
		t.Run(m.Name, func(t *testing.T) {
			t.Parallel()
			// More users than the lifecycle's 50, so that the backfill
			// takes several batches under the writers.
			setup := append([]string{usersTable, usersRows}, m.Setup...)
			setup = append(setup, "INSERT INTO users (name, email) SELECT 'bulk' || g, 'bulk' || g || '@x' FROM generate_series(1, 3000) g")
			e := newEnv(t, setup...)
			w := &writers{stop: make(chan struct{})}
			startWriters(e, "public", 2, m.OldWrite, w)
			res, err := e.engine().Start(context.Background(), parse(t, m.Name, m.YAML))
			if err != nil {
				close(w.stop)
				w.wg.Wait()
				t.Fatalf("start under writers: %v", err)
			}
			oldDuring := w.done.Load()
			startWriters(e, res.VersionSchema, 2, m.NewWrite, w)
			time.Sleep(3 * time.Second)
			close(w.stop)
			w.wg.Wait()
			if p := w.failed.Load(); p != nil {
				t.Fatalf("a writer failed: %v", *p)
			}
			if w.done.Load() == oldDuring || oldDuring == 0 {
				t.Fatalf("writes committed: %d before publishing, %d in all; want some in each", oldDuring, w.done.Load())
			}
			old, nw := e.version("public"), e.version(res.VersionSchema)
			e.Same(m, old, nw)
			before := e.rows(old, m.Old)
			e.complete()
			nw = e.version(res.VersionSchema)
			if after := e.rows(nw, m.New); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Fatalf("after complete the new version reads %d rows unlike the %d both versions showed", len(after), len(before))
			}
			t.Logf("%d writes committed (%d before publishing)", w.done.Load(), oldDuring)
		})
	}
}
