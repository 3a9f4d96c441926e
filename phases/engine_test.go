package phases_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/state"
)

func TestChainedMigrations(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows)
	eng := e.engine()
	latest := func() string {
		v, err := eng.Latest(ctx())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := latest(); got != "public" {
		t.Fatalf("latest before any migration = %q, want public", got)
	}
	e.start("m1", `operations: [ { rename_column: { table: users, from: name, to: full_name } } ]`)
	if got := latest(); got != "public_m1" {
		t.Fatalf("latest = %q, want public_m1", got)
	}
	e.complete()
	// The second migration's old version is the first one's schema.
	e.start("m2", `operations: [ { rename_column: { table: users, from: full_name, to: display_name } } ]`)
	v1, v2 := e.version("public_m1"), e.version("public_m2")
	e.exec(v1, "UPDATE users SET full_name = 'via v1' WHERE id = 1")
	e.expectRows(v2, []string{"via v1"}, "SELECT display_name FROM users WHERE id = 1")
	e.exec(v2, "UPDATE users SET display_name = 'via v2' WHERE id = 1")
	e.expectRows(v1, []string{"via v2"}, "SELECT full_name FROM users WHERE id = 1")
	e.complete()
	if e.schemaExists("public_m1") {
		t.Fatal("complete of m2 left the previous version schema public_m1")
	}
	e.expectRows(v2, []string{"via v2"}, "SELECT display_name FROM users WHERE id = 1")

	st, err := eng.Status(ctx())
	if err != nil {
		t.Fatal(err)
	}
	if st.InProgress != nil || len(st.History) != 2 || st.Latest != "public_m2" {
		t.Fatalf("status = %+v", st)
	}
	// A completed migration cannot be started again.
	if _, err := eng.Start(ctx(), parse(t, "m1", `operations: [ { rename_column: { table: users, from: display_name, to: x } } ]`)); err == nil {
		t.Fatal("starting an applied migration again succeeded")
	}
}

func TestFailedStartIsUndone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows, "INSERT INTO users (email) VALUES ('u1@x.io')")
	before := e.dump()
	eng := e.engine()
	// The unique index cannot be built over the duplicate: start fails at
	// its third step, after a column and a table were added.
	_, err := eng.Start(ctx(), parse(t, "bad", `
operations:
  - add_column: { table: users, column: { nullable: true, name: extra, type: text } }
  - create_table: { name: other, columns: [ { name: id, type: int, pk: true } ] }
  - create_index: { table: users, name: users_email_uniq, columns: [email], unique: true }
`))
	if err == nil {
		t.Fatal("start succeeded over duplicate values")
	}
	if !strings.Contains(err.Error(), "everything start did was undone") {
		t.Fatalf("the error does not say the rollback restored the schema: %v", err)
	}
	if after := e.dump(); after != before {
		t.Fatalf("failed start left changes:\n%s", after)
	}
	if e.schemaExists("public_bad") {
		t.Fatal("failed start left its version schema")
	}
	if _, err := eng.Complete(ctx()); !errors.Is(err, phases.ErrNoMigration) {
		t.Fatalf("complete after a failed start: %v, want ErrNoMigration", err)
	}
}

// TestFailedStartSaysWhatIsLeft: when the undo runs without error but the
// schema is not as before (here a raw SQL down that undoes half its up),
// start does not claim it was undone.
func TestFailedStartSaysWhatIsLeft(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable)
	_, err := e.engine().Start(ctx(), parse(t, "half", `
operations:
  - sql: { up: "CREATE TABLE x (a int); CREATE TABLE y (a int)", down: "DROP TABLE x" }
  - sql: { up: "SELECT 1/0" }
`))
	if err == nil {
		t.Fatal("start succeeded over a division by zero")
	}
	if strings.Contains(err.Error(), "undone") || !strings.Contains(err.Error(), "is not as it was before start") || !strings.Contains(err.Error(), "online rollback") {
		t.Fatalf("the error should say the schema is not restored and what to run: %v", err)
	}
	e.expectRows(e.db, []string{"1"}, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'y'")
}

func TestOneMigrationAtATime(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable)
	e.start("first", `operations: [ { rename_column: { table: users, from: name, to: n } } ]`)
	_, err := e.engine().Start(ctx(), parse(t, "second", `operations: [ { rename_column: { table: users, from: email, to: mail } } ]`))
	var inProg *phases.InProgressError
	if !errors.As(err, &inProg) || inProg.Name != "first" {
		t.Fatalf("second start: %v, want InProgressError naming first", err)
	}
	// Starting the same migration again is a no-op, not an error.
	if res := e.start("first", `operations: [ { rename_column: { table: users, from: name, to: n } } ]`); !res.Resumed {
		t.Fatalf("start of the migration in progress: %+v", res)
	}
}

func TestRacingProcesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable)
	// The sql step holds the lock long enough for the two to overlap.
	slow := `
operations:
  - sql: { up: "SELECT pg_sleep(1)", down: "SELECT 1" }
`
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.engine().Start(ctx(), parse(t, "slow", slow))
		}()
	}
	wg.Wait()
	var ok, busy int
	for _, err := range errs {
		var inProg *phases.InProgressError
		switch {
		case err == nil:
			ok++
		case errors.Is(err, state.ErrBusy), errors.As(err, &inProg):
			busy++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	// Either the loser was turned away, or it came after the winner had
	// published and found the migration already started.
	if ok < 1 || ok+busy != 2 {
		t.Fatalf("ok=%d busy=%d errors=%v", ok, busy, errs)
	}
}

// TestLockWaitsAreBounded holds a lock that the expand step needs. Other
// sessions must never queue behind online's waiting ALTER for much longer
// than lock_timeout, and online retries until the lock is free.
func TestLockWaitsAreBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows)
	holder := e.version("public")
	tx, err := holder.Begin(ctx())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx(), "SELECT count(*) FROM users"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		eng := e.engine(func(c *phases.Config) { c.LockTimeout = 100 * time.Millisecond; c.LockRetryDeadline = 30 * time.Second })
		_, err := eng.Start(ctx(), parse(t, "addcol", `operations: [ { add_column: { table: users, column: { nullable: true, name: extra, type: text } } } ]`))
		done <- err
	}()
	reader := e.version("public")
	var worst time.Duration
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		began := time.Now()
		if _, err := reader.Exec(ctx(), "SELECT count(*) FROM users"); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(began))
		time.Sleep(20 * time.Millisecond)
	}
	if err := tx.Commit(ctx()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("start after the lock was released: %s", pg.Explain(err))
	}
	// Without lock_timeout the reader would have queued behind the ALTER
	// for the whole 2 s that the lock was held.
	if worst > time.Second {
		t.Fatalf("a reader waited %s behind the migration", worst)
	}
}

func TestLockRetryDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable)
	before := e.dump()
	holder := e.version("public")
	tx, err := holder.Begin(ctx())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx(), "SELECT count(*) FROM users"); err != nil {
		t.Fatal(err)
	}
	eng := e.engine(func(c *phases.Config) {
		c.LockTimeout = 50 * time.Millisecond
		c.LockRetryDeadline = 700 * time.Millisecond
	})
	_, err = eng.Start(ctx(), parse(t, "addcol", `operations: [ { add_column: { table: users, column: { nullable: true, name: extra, type: text } } } ]`))
	var lte *pg.LockTimeoutError
	if !errors.As(err, &lte) || lte.Attempts < 2 {
		t.Fatalf("start under a held lock: %v, want a LockTimeoutError after retries", err)
	}
	_ = tx.Rollback(ctx())
	if after := e.dump(); after != before {
		t.Fatalf("gave-up start left changes:\n%s", after)
	}
}
