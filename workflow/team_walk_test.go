package workflow_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/workflow"
)

// writer is an application pinned to one version: it inserts and updates
// rows through it until stopped, counting its errors.
type writer struct {
	version  string
	stop     atomic.Bool
	writes   atomic.Int64
	failures atomic.Int64
	first    atomic.Value
	done     chan struct{}
}

func startWriter(t *testing.T, env *env, version, insert string) *writer {
	t.Helper()
	conn := env.version(version)
	w := &writer{version: version, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		ctx := context.Background()
		for k := 1; !w.stop.Load(); k++ {
			_, err := conn.Exec(ctx, insert, fmt.Sprintf("%s-%d", version, k))
			if err == nil {
				_, err = conn.Exec(ctx, "UPDATE users SET id = id WHERE id = $1", k%100+1)
			}
			if err != nil {
				w.failures.Add(1)
				w.first.CompareAndSwap(nil, err.Error())
			}
			w.writes.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	return w
}

func (w *writer) halt(t *testing.T) {
	t.Helper()
	w.stop.Store(true)
	<-w.done
	if n := w.failures.Load(); n != 0 || w.writes.Load() == 0 {
		t.Fatalf("the application on %s: %d of %d writes failed (first: %v)", w.version, n, w.writes.Load(), w.first.Load())
	}
}

// TestTeamWalkthrough is the team workflow of the "done when":
// three pending files migrated under live old and new writers, complete,
// revert, migrate again, a hand-made ALTER, status; every application
// pinned to a live version gets no error, and status tells the truth at
// every step.
func TestTeamWalkthrough(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	eng := env.engine(func(c *phases.Config) { c.BackfillBatchTime = 5 * time.Millisecond })
	dir := fstest.MapFS{"001_users.yaml": {Data: []byte("operations:\n  - create_table: { name: users, columns: [{ name: id, type: bigserial, pk: true }, { name: email, type: text, nullable: false }] }\n")}}
	if _, err := eng.Migrate(ctx, loadDir(t, dir), workflow.MigrateOptions{Complete: true}); err != nil {
		t.Fatalf("migrate: %s", pg.Explain(err))
	}
	env.exec(env.db, "INSERT INTO users (email) SELECT 'u' || g FROM generate_series(1, 2000) g")
	dir["002_rename.yaml"] = &fstest.MapFile{Data: []byte("operations:\n  - rename_column: { table: users, from: email, to: email_address }\n")}
	dir["003_nick.yaml"] = &fstest.MapFile{Data: []byte("operations:\n  - add_column: { table: users, column: { name: nick, type: text, nullable: true, default: \"'anon'\" } }\n")}
	dir["004_nick_idx.yaml"] = &fstest.MapFile{Data: []byte("operations:\n  - create_index: { table: users, name: users_nick_idx, columns: [nick] }\n")}
	d := loadDir(t, dir)
	const oldV, newV = "public_001_users", "public_004_nick_idx"
	const oldInsert, newInsert = "INSERT INTO users (email) VALUES ($1)", "INSERT INTO users (email_address, nick) VALUES ($1, 'n')"

	// migrate: the three files as one window; the old version serves all along.
	old := startWriter(t, env, oldV, oldInsert)
	var wg sync.WaitGroup
	var nw *writer
	wg.Add(1)
	go func() { // the new code is deployed once its version is published
		defer wg.Done()
		for !env.schemaExists(newV) {
			time.Sleep(5 * time.Millisecond)
		}
		nw = startWriter(t, env, newV, newInsert)
	}()
	res, err := eng.Migrate(ctx, d, workflow.MigrateOptions{})
	if err != nil {
		t.Fatalf("migrate 3 files: %s", pg.Explain(err))
	}
	wg.Wait()
	if res.InProgress != "004_nick_idx" {
		t.Fatalf("migrate: %+v", res)
	}
	expectStates(t, eng, d, map[string]string{"001_users": "applied", "002_rename": "in_progress", "003_nick": "in_progress", "004_nick_idx": "in_progress"})
	time.Sleep(50 * time.Millisecond)
	old.halt(t) // the old code is gone: complete
	env.complete()
	expectStates(t, eng, d, map[string]string{"001_users": "applied", "002_rename": "applied", "003_nick": "applied", "004_nick_idx": "applied"})

	// revert: the window is undone; the version of 001 comes back, and the
	// new code keeps writing until the revert completes.
	rres, err := eng.Revert(ctx)
	if err != nil {
		t.Fatalf("revert: %s", pg.Explain(err))
	}
	if rres.VersionSchema != oldV {
		t.Fatalf("the revert publishes %q, want %s", rres.VersionSchema, oldV)
	}
	back := startWriter(t, env, oldV, oldInsert)
	time.Sleep(50 * time.Millisecond)
	nw.halt(t)
	env.complete()
	expectStates(t, eng, d, map[string]string{"001_users": "applied", "002_rename": "pending", "003_nick": "pending", "004_nick_idx": "pending"})

	// migrate again: the three files are applied again, 001's version
	// serving all along.
	res, err = eng.Migrate(ctx, d, workflow.MigrateOptions{Complete: false})
	if err != nil || res.InProgress != "004_nick_idx" {
		t.Fatalf("migrate again: %+v, %v", res, err)
	}
	again := startWriter(t, env, newV, newInsert)
	time.Sleep(50 * time.Millisecond)
	back.halt(t)
	env.complete()
	time.Sleep(20 * time.Millisecond)
	again.halt(t)
	expectStates(t, eng, d, map[string]string{"001_users": "applied", "002_rename": "applied", "003_nick": "applied", "004_nick_idx": "applied"})
	env.expectRows(env.db, []string{"users_nick_idx"}, "SELECT indexname FROM pg_indexes WHERE tablename = 'users' AND indexname <> 'users_pkey'")
	// Every row written through any version is there, in the final shape.
	var total int64
	if err := env.db.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&total); err != nil {
		t.Fatal(err)
	}
	if want := 2000 + old.writes.Load() + nw.writes.Load() + back.writes.Load() + again.writes.Load(); total != want {
		t.Fatalf("%d rows, want %d", total, want)
	}

	// A hand-made ALTER: status says so.
	env.exec(env.db, "ALTER TABLE users ADD COLUMN note text")
	st, err := eng.DirStatus(ctx, d)
	if err != nil {
		t.Fatalf("status: %s", pg.Explain(err))
	}
	if len(st.SchemaDrift.Drift) != 1 || st.SchemaDrift.Drift[0].Object != "column users.note" || st.SchemaDrift.Since != "004_nick_idx" {
		t.Fatalf("status after a hand-made ALTER: %+v", st.SchemaDrift)
	}
}
