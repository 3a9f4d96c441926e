package phases_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/phases"
)

// TestLockWaitNamesBlocker: a session idle in a transaction that read the
// table keeps start's DDL from its lock. When the retries give up, the
// error names that session (pid, user, application, state, its query) and
// what the operator may do; the log said so while start waited.
func TestLockWaitNamesBlocker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows)
	holder := pgtest.Connect(t, e.url)
	pgtest.Exec(t, holder, "SET application_name = 'billing-worker'", "BEGIN", "SELECT count(*) FROM users")
	t.Cleanup(func() { _, _ = holder.Exec(ctx(), "ROLLBACK") })
	pid := holder.PgConn().PID()

	var logs syncBuffer
	eng := e.engine(func(c *phases.Config) {
		// Waits long enough for the watcher, which opens its session
		// once a statement has waited half the lock timeout, to look
		// on a loaded machine too.
		c.LockTimeout = time.Second
		c.LockRetryDeadline = 5 * time.Second
		c.Log = zerolog.New(&logs)
	})
	_, err := eng.Start(ctx(), parse(t, "add", "operations:\n  - add_column: { table: users, column: { name: nickname, type: text, nullable: true } }\n"))
	var lte *pg.LockTimeoutError
	if !errors.As(err, &lte) {
		t.Fatalf("start: %v, want a lock timeout", err)
	}
	if len(lte.Blockers) != 1 {
		t.Fatalf("blockers %+v, want the one holder", lte.Blockers)
	}
	b := lte.Blockers[0]
	if b.PID != int(pid) || b.Application != "billing-worker" || b.State != "idle in transaction" || b.User == "" ||
		!strings.Contains(b.Query, "SELECT count(*) FROM users") || b.XactAge <= 0 || b.QueryStart.IsZero() {
		t.Fatalf("blocker %+v, want pid %d, billing-worker, idle in transaction, its query", b, pid)
	}
	msg := err.Error()
	for _, want := range []string{fmt.Sprintf("pid %d", pid), `application "billing-worker"`, "idle in transaction", "pg_terminate_backend"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q:\n%s", want, msg)
		}
	}
	if log := logs.String(); !strings.Contains(log, `"event":"blocked"`) || !strings.Contains(log, fmt.Sprintf(`"pid":%d`, pid)) {
		t.Errorf("the log did not name the blocker while start waited:\n%s", log)
	}
	t.Logf("the error: %s", msg)
	// Nothing changed.
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'nickname'")
}

// TestStatusNamesBlocker: while start's DDL waits for a lock an
// application's open transaction holds, status (from another engine, as
// `online status` runs in another process) shows the waiting session and
// the holder, and its next step says whom to end, at the operator's choice.
func TestStatusNamesBlocker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows)
	holder := pgtest.Connect(t, e.url)
	pgtest.Exec(t, holder, "SET application_name = 'billing-worker'", "BEGIN", "SELECT count(*) FROM users")
	pid := int(holder.PgConn().PID())

	eng := e.engine(func(c *phases.Config) {
		c.LockTimeout = time.Second
		c.LockRetryDeadline = 2 * time.Minute
	})
	started := make(chan error, 1)
	go func() {
		_, err := eng.Start(ctx(), parse(t, "add", "operations:\n  - add_column: { table: users, column: { name: nickname, type: text, nullable: true } }\n"))
		started <- err
	}()

	var st *phases.Status
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		if st, err = e.engine().Status(ctx()); err != nil {
			t.Fatalf("status: %v", err)
		}
		if len(st.Waits) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(st.Waits) != 1 {
		t.Fatalf("status while start waits: waits %+v, want start's session waiting for pid %d", st.Waits, pid)
	}
	w := st.Waits[0]
	if !strings.HasPrefix(w.Application, "online") || len(w.Blockers) != 1 || w.Blockers[0].PID != pid ||
		w.Blockers[0].Application != "billing-worker" || !strings.Contains(w.Query, "users") {
		t.Fatalf("wait %+v, want an online session blocked by billing-worker (pid %d)", w, pid)
	}
	if !st.Running || !strings.Contains(st.Next, fmt.Sprintf("pg_terminate_backend(%d)", pid)) {
		t.Fatalf("running %v, next %q: want the holder's pid to end, at the operator's choice", st.Running, st.Next)
	}

	// The holder ends its transaction: start gets its lock and finishes,
	// and status has no wait to show.
	pgtest.Exec(t, holder, "ROLLBACK")
	if err := <-started; err != nil {
		t.Fatalf("start after the holder left: %v", err)
	}
	st, err := e.engine().Status(ctx())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if len(st.Waits) != 0 {
		t.Fatalf("status after start: waits %+v, want none", st.Waits)
	}
}
