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
		c.LockTimeout = 200 * time.Millisecond
		c.LockRetryDeadline = 1500 * time.Millisecond
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
