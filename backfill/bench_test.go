package backfill

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onlinepg/online/internal/pgtest"
)

// benchResult is measured once per process: the testing package may call a
// benchmark function again with a larger b.N when one call was quick (small
// ONLINE_BENCH_ROWS), and one database is enough.
var (
	benchOnce   sync.Once
	benchResult struct {
		rows             int64
		plain, backfill  float64 // rows per second
		batches          int
		sizes            string
		slowPauses       int
		retries          int
		plainD, backfilD time.Duration
		err              error
	}
)

// BenchmarkBackfill compares Run with the ceiling, one plain UPDATE of the
// whole table, on a table that was never ANALYZEd.
func BenchmarkBackfill(b *testing.B) {
	benchOnce.Do(func() { measure(b) })
	res := &benchResult
	if res.err != nil {
		b.Fatal(res.err)
	}
	ratio := res.backfill / res.plain
	b.Logf("rows: %d (never analyzed)", res.rows)
	b.Logf("plain UPDATE: %s, %.0f rows/s", res.plainD.Round(time.Millisecond), res.plain)
	b.Logf("backfill.Run: %s, %.0f rows/s in %d batches", res.backfilD.Round(time.Millisecond), res.backfill, res.batches)
	b.Logf("ratio backfill/plain: %.2f (target >= 0.70)", ratio)
	b.Logf("batch sizes: %s", res.sizes)
	b.Logf("pauses after a slow batch: %d, lock retries: %d", res.slowPauses, res.retries)
	b.ReportMetric(res.plain, "plain_rows/s")
	b.ReportMetric(res.backfill, "backfill_rows/s")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(0, "ns/op") // one op is the whole comparison; its time means nothing
}

func measure(b *testing.B) {
	res := &benchResult
	fail := func(err error) { res.err = err }
	rows := int64(1_000_000)
	if v := os.Getenv("ONLINE_BENCH_ROWS"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			fail(fmt.Errorf("ONLINE_BENCH_ROWS=%q: want a positive integer", v))
			return
		}
		rows = n
	}
	res.rows = rows
	ctx := context.Background()
	conn := pgtest.Connect(b, pgtest.NewDB(b))
	exec := func(stmts ...string) error {
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	}
	// autovacuum off for the table: its ANALYZE would give the planner the
	// statistics this benchmark means to go without, and a VACUUM between
	// the runs would make them start differently.
	if err := exec(
		`CREATE TABLE bench (id bigserial PRIMARY KEY, name text, email text, score int) WITH (autovacuum_enabled = off)`,
		fmt.Sprintf(`INSERT INTO bench (name, email, score)
			SELECT 'name ' || g, 'User' || g || '@Example.COM', g %% 1000 FROM generate_series(1, %d) g`, rows),
		`ALTER TABLE bench ADD COLUMN email_new text`,
		// Both runs start from a vacuumed table (visibility map, hint bits)
		// and right after a checkpoint (so both pay the same full-page writes).
		`VACUUM bench`,
		`CHECKPOINT`,
	); err != nil {
		fail(err)
		return
	}
	var stats int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stats WHERE tablename = 'bench'`).Scan(&stats); err != nil || stats != 0 {
		fail(fmt.Errorf("the table has %d column statistics (%v); the benchmark needs none", stats, err))
		return
	}

	t0 := time.Now()
	if err := exec(`UPDATE bench SET email_new = lower(email)`); err != nil {
		fail(err)
		return
	}
	res.plainD = time.Since(t0)

	// Reset: a fresh column, and VACUUM FULL so that the table and its index
	// are laid out as before the first run instead of half dead tuples.
	if err := exec(
		`ALTER TABLE bench DROP COLUMN email_new`,
		`ALTER TABLE bench ADD COLUMN email_new text`,
		`VACUUM FULL bench`,
		`VACUUM bench`,
		`CHECKPOINT`,
	); err != nil {
		fail(err)
		return
	}

	var sizes []int
	var log lockBuffer // the debug log tells how often Run paused or retried
	t0 = time.Now()
	cp, err := Run(ctx, conn, Task{
		Schema: "public", Table: "bench",
		Key: []Column{{Name: "id", Type: "bigint"}},
		Set: []Assignment{{Column: "email_new", Expr: `lower(email)`}},
	}, Options{
		Settings: map[string]string{"online.backfill": "on"}, // as the engine does
		Progress: func(p Progress) { sizes = append(sizes, p.BatchSize) },
		Logger:   debugLogger(&log),
	})
	res.backfilD = time.Since(t0)
	if err != nil {
		fail(err)
		return
	}
	var wrong int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM bench WHERE email_new IS DISTINCT FROM lower(email)`).Scan(&wrong); err != nil || wrong != 0 || cp.RowsDone != rows {
		fail(fmt.Errorf("backfill left %d rows wrong, walked %d of %d (%v)", wrong, cp.RowsDone, rows, err))
		return
	}
	res.plain = float64(rows) / res.plainD.Seconds()
	res.backfill = float64(rows) / res.backfilD.Seconds()
	res.batches = len(sizes)
	res.sizes = summarizeSizes(sizes)
	res.slowPauses = strings.Count(log.String(), "much slower than its target")
	res.retries = strings.Count(log.String(), "batch retry")
}

// summarizeSizes shows the ramp-up and where the size settled.
func summarizeSizes(sizes []int) string {
	if len(sizes) == 0 {
		return "none"
	}
	var head []string
	for _, s := range sizes[:min(8, len(sizes))] {
		head = append(head, strconv.Itoa(s))
	}
	tail := slices.Clone(sizes[len(sizes)/2:])
	slices.Sort(tail)
	return fmt.Sprintf("first %s; second half median %d, range %d..%d",
		strings.Join(head, " "), tail[len(tail)/2], tail[0], tail[len(tail)-1])
}
