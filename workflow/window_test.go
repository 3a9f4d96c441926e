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

// TestWorkflowWindow applies three files as one expand/contract step while
// old-version and new-version clients write through both ends of the
// window, then checks every row.
func TestWorkflowWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const seed = 500
	env := newEnv(t, "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL, price int NOT NULL)",
		fmt.Sprintf("INSERT INTO items (name, price) SELECT 'item' || i, i FROM generate_series(1, %d) i", seed))
	eng := env.engine(func(c *phases.Config) { c.BackfillBatchTime = 5 * time.Millisecond })
	dir := fstest.MapFS{
		"001_price_bigint.yaml": {Data: []byte("operations:\n  - alter_column: { table: items, column: price, type: bigint, up: price::bigint, down: price::int }\n")},
		"002_title.yaml":        {Data: []byte("operations:\n  - rename_column: { table: items, from: name, to: title }\n")},
		"003_price_cents.yaml":  {Data: []byte("operations:\n  - alter_column: { table: items, column: price, up: price * 100, down: (price / 100)::int }\n")},
	}
	d := loadDir(t, dir)
	const version = "public_003_price_cents"

	// The old version is the tables themselves (no migration before);
	// the new one the version schema of the window.
	oldConn, newConn := env.version("public"), env.version(version+", public")
	var (
		stopOld, stopNew atomic.Bool
		wg               sync.WaitGroup
		errs             = make(chan error, 4)
		incr             = map[int]int{} // old writer's increments per seed row
		oldRows, newRows int
	)
	wg.Add(2)
	oldDone := make(chan struct{})
	go func() { // old application code, until just before complete
		defer wg.Done()
		defer close(oldDone)
		for k := 1; !stopOld.Load(); k++ {
			if _, err := oldConn.Exec(ctx, "INSERT INTO items (name, price) VALUES ($1, $2)", fmt.Sprintf("old-%d", k), k); err != nil {
				errs <- fmt.Errorf("old insert: %w", err)
				return
			}
			id := k%seed + 1
			if _, err := oldConn.Exec(ctx, "UPDATE items SET price = price + 1 WHERE id = $1", id); err != nil {
				errs <- fmt.Errorf("old update: %w", err)
				return
			}
			incr[id]++
			oldRows = k
			time.Sleep(time.Millisecond)
		}
	}()
	go func() { // new application code, from publication through complete
		defer wg.Done()
		for !env.schemaExists(version) {
			if stopNew.Load() {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		for k := 1; !stopNew.Load(); k++ {
			if _, err := newConn.Exec(ctx, "INSERT INTO items (title, price) VALUES ($1, $2)", fmt.Sprintf("new-%d", k), k*100); err != nil {
				errs <- fmt.Errorf("new insert: %w", err)
				return
			}
			newRows = k
			time.Sleep(time.Millisecond)
		}
	}()
	fail := func(format string, args ...any) {
		stopOld.Store(true)
		stopNew.Store(true)
		wg.Wait()
		t.Fatalf(format, args...)
	}

	time.Sleep(50 * time.Millisecond)
	res, err := eng.Migrate(ctx, d, workflow.MigrateOptions{Window: true})
	if err != nil {
		fail("migrate --window: %s", pg.Explain(err))
	}
	if res.InProgress != "003_price_cents" || res.VersionSchema != version || len(res.Applied) != 3 || len(res.Completed) != 0 {
		fail("migrate --window: %+v", res)
	}
	// Meanwhile: the three files are in progress, one migration, one backfill.
	st, err := eng.DirStatus(ctx, d)
	if err != nil {
		fail("status: %v", err)
	}
	for _, f := range st.Files {
		if f.State != workflow.FileInProgress || f.Migration != "003_price_cents" {
			fail("during the window: %+v", f)
		}
	}
	if st.InProgress == nil || len(st.InProgress.Backfills) != 1 {
		fail("the window should have one backfill of items: %+v", st.InProgress)
	}
	time.Sleep(200 * time.Millisecond)
	stopOld.Store(true) // the old code is gone: the deploy completes
	<-oldDone           // its last statement has returned before complete begins
	if _, err := eng.Complete(ctx); err != nil {
		fail("complete: %s", pg.Explain(err))
	}
	time.Sleep(50 * time.Millisecond)
	stopNew.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if oldRows == 0 || newRows == 0 {
		t.Fatalf("both clients should have written: old %d, new %d", oldRows, newRows)
	}

	// Every row, as the new version (now the tables) sees it.
	want := map[string]int64{}
	for i := 1; i <= seed; i++ {
		want[fmt.Sprintf("item%d", i)] = int64(i+incr[i]) * 100
	}
	for k := 1; k <= oldRows; k++ {
		want[fmt.Sprintf("old-%d", k)] = int64(k) * 100
	}
	for k := 1; k <= newRows; k++ {
		want[fmt.Sprintf("new-%d", k)] = int64(k) * 100
	}
	rows, err := env.db.Query(ctx, "SELECT title, price FROM items")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for rows.Next() {
		var title string
		var price int64
		if err := rows.Scan(&title, &price); err != nil {
			t.Fatal(err)
		}
		got[title] = price
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for title, p := range want {
		if got[title] != p {
			t.Fatalf("row %s: price %d, want %d", title, got[title], p)
		}
	}
	env.expectRows(env.db, []string{"id|bigint", "title|text", "price|bigint"}, "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.items'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum")

	// History: one migration, the three files applied, each with its own checksum.
	expectStates(t, eng, d, map[string]string{"001_price_bigint": "applied", "002_title": "applied", "003_price_cents": "applied"})
	env.expectRows(env.db, []string{"003_price_cents|001_price_bigint.yaml,002_title.yaml,003_price_cents.yaml|3"},
		"SELECT name, (SELECT string_agg(f->>'name', ',') FROM jsonb_array_elements(files) f), (SELECT count(DISTINCT f->>'checksum') FROM jsonb_array_elements(files) f) FROM online.migrations")
}
