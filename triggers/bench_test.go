package triggers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pgtest"
)

// BenchmarkSyncTriggers measures what a migration's sync triggers cost the
// application's writes, on one table, in one run:
//
//	go test -bench . -run '^$' ./triggers
//
// ONLINE_BENCH_ROWS (default 1,000,000) sizes the table and
// ONLINE_BENCH_SECONDS (default 5) is the length of each OLTP run.
//
// The migration is the one the engine would make for a rewrite of email to
// lower(email): a hidden _online_email text column, added and left NULL as
// before the backfill, with Up lower(email) and Down email.
func BenchmarkSyncTriggers(b *testing.B) {
	nRows := envInt(b, "ONLINE_BENCH_ROWS", 1_000_000)
	seconds := envInt(b, "ONLINE_BENCH_SECONDS", 5)
	url := pgtest.NewDB(b)
	conn := pgtest.Connect(b, url)

	start := time.Now()
	pgtest.Exec(b, conn,
		`CREATE TABLE bench (id bigserial PRIMARY KEY, name text, email text, score int)`,
		fmt.Sprintf(`INSERT INTO bench (name, email, score)
			SELECT 'name ' || g, 'User' || g || '@Example.com', g %% 1000 FROM generate_series(1, %d) g`, nRows),
		`VACUUM ANALYZE bench`)
	fmt.Printf("loaded %d rows in %s\n", nRows, time.Since(start).Round(time.Millisecond))

	tbl := Table{Schema: "public", Name: "bench", FuncSchema: "public", Key: []string{"id"}}
	rw := Rewrite{
		ID: "email", OldColumn: "email", NewColumn: "_online_email",
		Up:      &Conversion{Inputs: []Var{{Name: "email", Type: "text", Physical: "email"}}, Steps: []Step{{Expr: "lower(email)"}}},
		Down:    &Conversion{Inputs: []Var{{Name: "email", Type: "text", Physical: "_online_email"}}, Steps: []Step{{Expr: "email"}}},
		UpWatch: []string{"email"}, DownWatch: []string{"_online_email"},
	}
	const bulkSQL = `UPDATE bench SET score = score + 1`
	// Informational: an update of the converted column fires the up trigger
	// on every row, which shows the per-row cost of the function itself.
	// reverse() changes every value and keeps the table the same size.
	const firingSQL = `UPDATE bench SET email = reverse(email)`
	duration := time.Duration(seconds) * time.Second

	plainBulk := bulkUpdate(b, conn, bulkSQL, 2)
	plainFiring := bulkUpdate(b, conn, firingSQL, 1)
	plainTPS := oltp(b, conn, url, nRows, duration, 2)

	ctx := context.Background()
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `ALTER TABLE bench ADD COLUMN _online_email text`); err != nil {
			return err
		}
		for _, s := range Create(tbl, rw) {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%w\n%s", err, s)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("install the migration: %v", err)
	}

	trigBulk := bulkUpdate(b, conn, bulkSQL, 2)
	trigFiring := bulkUpdate(b, conn, firingSQL, 1)
	trigTPS := oltp(b, conn, url, nRows, duration, 2)

	// Ratios are throughput ratios (triggers/plain): 1.0 means no cost.
	bulkRatio := plainBulk.Seconds() / trigBulk.Seconds()
	firingRatio := plainFiring.Seconds() / trigFiring.Seconds()
	oltpRatio := trigTPS / plainTPS
	fmt.Printf("bulk update (%s, %d rows, best of 2): plain %s, with triggers %s, ratio %.3f (target >= 0.8)\n",
		bulkSQL, nRows, round(plainBulk), round(trigBulk), bulkRatio)
	fmt.Printf("bulk update firing the up trigger on every row (%s, 1 run, informational): plain %s, with triggers %s, ratio %.3f, %.2f us/row\n",
		firingSQL, round(plainFiring), round(trigFiring), firingRatio, (trigFiring-plainFiring).Seconds()*1e6/float64(nRows))
	fmt.Printf("oltp (4 clients, INSERT + UPDATE by key per tx, best of 2 x %s): plain %.0f tx/s, with triggers %.0f tx/s, ratio %.3f (target >= 0.95)\n",
		duration, plainTPS, trigTPS, oltpRatio)

	b.ReportMetric(plainBulk.Seconds(), "bulk-plain-s")
	b.ReportMetric(trigBulk.Seconds(), "bulk-trig-s")
	b.ReportMetric(bulkRatio, "bulk-ratio")
	b.ReportMetric(plainTPS, "oltp-plain-tx/s")
	b.ReportMetric(trigTPS, "oltp-trig-tx/s")
	b.ReportMetric(oltpRatio, "oltp-ratio")
}

// bulkUpdate runs sql runs times and returns the best time. Before each run
// the table is rewritten compactly (VACUUM FULL), vacuumed (visibility map,
// hint bits) and checkpointed, so every run, with or without triggers,
// starts from the same physical state: same pages, no dead tuples, no dirty
// buffers, and the same full-page images to write after the checkpoint.
func bulkUpdate(b *testing.B, conn *pgx.Conn, sql string, runs int) time.Duration {
	b.Helper()
	var best time.Duration
	for i := 0; i < runs; i++ {
		pgtest.Exec(b, conn, `VACUUM FULL bench`, `VACUUM ANALYZE bench`, `CHECKPOINT`)
		start := time.Now()
		pgtest.Exec(b, conn, sql)
		if d := time.Since(start); i == 0 || d < best {
			best = d
		}
	}
	return best
}

// oltp runs 4 clients for d, each transaction one INSERT of a new row plus
// one UPDATE of score of a random existing row by primary key, runs times,
// and returns the best rate in transactions per second. The rows it inserted
// are deleted afterwards so that later measurements see the same table.
func oltp(b *testing.B, conn *pgx.Conn, url string, nRows int, d time.Duration, runs int) float64 {
	b.Helper()
	const clients = 4
	ctx := context.Background()
	conns := make([]*pgx.Conn, clients)
	for i := range conns {
		conns[i] = pgtest.Connect(b, url)
	}
	var best float64
	for run := 0; run < runs; run++ {
		pgtest.Exec(b, conn, `VACUUM ANALYZE bench`, `CHECKPOINT`)
		var done atomic.Int64
		var firstErr error
		var errOnce sync.Once
		var wg sync.WaitGroup
		deadline := time.Now().Add(d)
		start := time.Now()
		for w, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(run), uint64(w)))
				for n := 0; time.Now().Before(deadline); n++ {
					// Statements run on a background context: a deadline
					// firing mid-transaction would count as an error.
					err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
						if _, err := tx.Exec(ctx, `INSERT INTO bench (name, email, score) VALUES ($1, $2, $3)`,
							fmt.Sprintf("client %d row %d", w, n), fmt.Sprintf("Client%d.Row%d@Example.com", w, n), n%1000); err != nil {
							return err
						}
						_, err := tx.Exec(ctx, `UPDATE bench SET score = score + 1 WHERE id = $1`, rng.Int64N(int64(nRows))+1)
						return err
					})
					if err != nil {
						errOnce.Do(func() { firstErr = err })
						return
					}
					done.Add(1)
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		if firstErr != nil {
			b.Fatalf("oltp: %v", firstErr)
		}
		if tps := float64(done.Load()) / elapsed.Seconds(); tps > best {
			best = tps
		}
		pgtest.Exec(b, conn, fmt.Sprintf(`DELETE FROM bench WHERE id > %d`, nRows))
	}
	return best
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
