package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/onlinepg/online/internal/lifecycletest"
	"github.com/onlinepg/online/phases"
)

func benchEnvInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

// The two migrations of BenchmarkMoveThroughput, of the same size: one
// column of users filled for every row. moveYAML takes it from the 1:1
// side table profiles (a move between tables, triggers on both); rewriteYAML
// computes it from users' own row (a same-table rewrite, triggers on users).
const (
	moveYAML = `
operations:
  - add_column:
      table: users
      column: { name: bio2, type: text, nullable: true }
      from: { table: profiles, value: profiles.bio, where: profiles.user_id = users.id, down: { bio: users.bio2 } }
`
	rewriteYAML = `
operations:
  - add_column: { table: users, column: { name: bio2, type: text, nullable: true }, up: "'about ' || name" }
`
)

// BenchmarkMoveThroughput measures what an application sees while a move of
// data between tables runs, beside a same-table rewrite of the same size:
// 4 clients, each transaction updating one row of users and one of its
// profile by key (through the old version), and the transactions per second
// they commit while start runs (expand, backfill of every user, publish),
// against the same workload on plain PostgreSQL with no migration. The runs
// go plain, move, rewrite, rewrite, move, plain (A B B A for each
// migration against plain); each migration is rolled back and the tables
// vacuumed before the next run.
//
// Run: go test -bench MoveThroughput -benchtime 1x -run '^$' ./bench
// (ONLINE_BENCH_ROWS sets the rows, default 200000; ONLINE_BENCH_SECONDS the
// length of a plain run, default 3).
func BenchmarkMoveThroughput(b *testing.B) {
	rows := benchEnvInt("ONLINE_BENCH_ROWS", 200_000)
	plainTime := time.Duration(benchEnvInt("ONLINE_BENCH_SECONDS", 3)) * time.Second
	for i := 0; i < b.N; i++ {
		e := lifecycletest.NewEnv(b,
			"CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL, score int NOT NULL DEFAULT 0)",
			"CREATE TABLE profiles (user_id bigint PRIMARY KEY REFERENCES users (id), bio text)",
			fmt.Sprintf("INSERT INTO users (name) SELECT 'user ' || g FROM generate_series(1, %d) g", rows),
			"INSERT INTO profiles SELECT id, 'about ' || name FROM users",
			"VACUUM ANALYZE users", "VACUUM ANALYZE profiles", "CHECKPOINT")
		reset := func() {
			e.Exec(e.DB, "VACUUM users")
			e.Exec(e.DB, "VACUUM profiles")
			e.Exec(e.DB, "CHECKPOINT")
		}
		// run measures the workload's throughput while during runs.
		run := func(during func()) (tps float64, elapsed time.Duration) {
			var n atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for c := 0; c < 4; c++ {
				conn := e.Version("public")
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer conn.Close(context.Background())
					rng := rand.New(rand.NewPCG(uint64(c), 26))
					for {
						select {
						case <-stop:
							return
						default:
						}
						id := rng.IntN(rows) + 1
						_, err := conn.Exec(context.Background(), "WITH u AS (UPDATE users SET score = score + 1 WHERE id = $1) UPDATE profiles SET bio = 'bio ' || $2::text WHERE user_id = $1", id, strconv.Itoa(rng.IntN(1000)))
						var pe *pgconn.PgError
						switch {
						case err == nil:
							n.Add(1)
						case errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001"):
						default:
							b.Error(err)
							return
						}
					}
				}()
			}
			time.Sleep(200 * time.Millisecond) // the clients connected and warm
			began, before := time.Now(), n.Load()
			during()
			elapsed = time.Since(began)
			done := n.Load() - before
			close(stop)
			wg.Wait()
			return float64(done) / elapsed.Seconds(), elapsed
		}
		plain := func() { time.Sleep(plainTime) }
		migrate := func(name, yaml string) func() {
			return func() {
				eng, err := phases.Open(context.Background(), phases.Config{URL: e.URL, LockTimeout: 500 * time.Millisecond, LockRetryDeadline: time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				defer eng.Close(context.Background())
				if _, err := eng.Start(context.Background(), lifecycletest.Parse(b, name, yaml)); err != nil {
					b.Fatalf("start %s: %v", name, err)
				}
			}
		}
		var plainTPS, moveTPS, rewriteTPS []float64
		var moveTime, rewriteTime []time.Duration
		for _, step := range []string{"plain", "move", "rewrite", "rewrite", "move", "plain"} {
			switch step {
			case "plain":
				tps, _ := run(plain)
				plainTPS = append(plainTPS, tps)
			case "move":
				tps, d := run(migrate("move", moveYAML))
				moveTPS, moveTime = append(moveTPS, tps), append(moveTime, d)
				e.Rollback()
			case "rewrite":
				tps, d := run(migrate("rewrite", rewriteYAML))
				rewriteTPS, rewriteTime = append(rewriteTPS, tps), append(rewriteTime, d)
				e.Rollback()
			}
			reset()
		}
		p, m, r := mean(plainTPS), mean(moveTPS), mean(rewriteTPS)
		b.Logf("users and profiles: %d rows each; 4 clients, each transaction updates one user and its profile by key (old version)", rows)
		b.Logf("runs in order plain, move, rewrite, rewrite, move, plain; mean of each")
		b.Logf("plain PostgreSQL, no migration:                       %.0f tx/s (runs %.0f)", p, plainTPS)
		b.Logf("during start of a move between tables (from:):        %.0f tx/s, ratio %.2f to plain; start took %v", m, m/p, moveTime)
		b.Logf("during start of a same-table rewrite (up:), same size: %.0f tx/s, ratio %.2f to plain; start took %v", r, r/p, rewriteTime)
		b.Logf("move against rewrite: throughput ratio %.2f", m/r)
		b.ReportMetric(m/p, "move/plain")
		b.ReportMetric(r/p, "rewrite/plain")
		b.ReportMetric(m/r, "move/rewrite")
	}
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
