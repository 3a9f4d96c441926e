package phases_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/backfill"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/phases"
)

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkRewrite measures, in one run on one table of 1M rows (never
// ANALYZEd), the four figures of a column rewrite against plain PostgreSQL:
//
//  1. one plain UPDATE ... SET new = expr over the whole table (the ceiling)
//  2. online's backfill of the same change, through the engine (rows/s),
//     the whole start, and how much each of 1 and 2 grew the table
//  3. one UPDATE of every row's score, plain and with the migration's triggers
//  4. OLTP (INSERT + UPDATE by key per transaction, 4 clients), plain and with triggers
//
// Run: go test -bench Rewrite -benchtime 1x -run '^$' ./phases
// (ONLINE_BENCH_ROWS, ONLINE_BENCH_SECONDS and ONLINE_BENCH_BLOCKS override
// the size, the length of one OLTP run and the number of OLTP blocks;
// ONLINE_BENCH_WORKERS the backfill workers; ONLINE_BENCH_PARTS=12 stops
// after 1 and 2, for the runs that compare worker counts and sizes).
func BenchmarkRewrite(b *testing.B) {
	rows := envInt("ONLINE_BENCH_ROWS", 1_000_000)
	oltpTime := time.Duration(envInt("ONLINE_BENCH_SECONDS", 2)) * time.Second
	oltpBlocks := envInt("ONLINE_BENCH_BLOCKS", 8)
	// ONLINE_BENCH_WORKERS sets --backfill-workers; 0 (the default) lets
	// the engine choose, as the CLI does.
	workers := envInt("ONLINE_BENCH_WORKERS", 0)
	change := rewriteChanges[os.Getenv("ONLINE_BENCH_CHANGE")]
	if change.name == "" {
		b.Fatalf("ONLINE_BENCH_CHANGE=%q: want lower or bigint", os.Getenv("ONLINE_BENCH_CHANGE"))
	}
	for i := 0; i < b.N; i++ {
		var neighbourTxns func() int64
		var neighbourRate []float64 // [plain runs..., online runs...] transactions/s
		if os.Getenv("ONLINE_BENCH_NEIGHBOUR") == "1" {
			neighbourTxns = busyNeighbour(b)
		}
		watchNeighbour := func() func() {
			if neighbourTxns == nil {
				return func() {}
			}
			n0, t0 := neighbourTxns(), time.Now()
			return func() {
				neighbourRate = append(neighbourRate, float64(neighbourTxns()-n0)/time.Since(t0).Seconds())
			}
		}
		e := newEnv(b,
			"CREATE TABLE bench (id bigserial PRIMARY KEY, name text, email text, score int)",
			fmt.Sprintf("INSERT INTO bench (name, email, score) SELECT 'name ' || g, 'User' || g || '@Example.COM', g %% 1000 FROM generate_series(1, %d) g", rows),
			"VACUUM bench", "CHECKPOINT")
		reset := func() { e.exec(e.db, "VACUUM bench"); e.exec(e.db, "CHECKPOINT") }

		// 1 and 2 in A B B A order (plain, online, online, plain), the
		// mean of each side: a slow drift of the machine weighs on both
		// alike. Each run starts from the same packed table: the plain
		// side adds and fills its column in a transaction that is rolled
		// back, the online side's migration is rolled back, and VACUUM
		// FULL packs the table again after either.
		var plainRuns, backfillRuns, startRuns []time.Duration
		var plainGrowth, backfillGrowth []int64
		var present int64
		var analyzed, chose int
		size := func(q interface {
			QueryRow(context.Context, string, ...any) pgx.Row
		}) int64 {
			var n int64
			if err := q.QueryRow(context.Background(), "SELECT pg_total_relation_size('bench')").Scan(&n); err != nil {
				b.Fatal(err)
			}
			return n
		}
		plain := func() {
			before := size(e.db)
			tx, err := e.db.Begin(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tx.Exec(context.Background(), change.plainAdd); err != nil {
				b.Fatal(err)
			}
			done := watchNeighbour()
			began := time.Now()
			if _, err := tx.Exec(context.Background(), change.plainUpdate); err != nil {
				b.Fatal(err)
			}
			plainRuns = append(plainRuns, time.Since(began))
			done()
			plainGrowth = append(plainGrowth, size(tx)-before)
			_ = tx.Rollback(context.Background())
			e.exec(e.db, "VACUUM FULL bench")
			reset()
		}
		online := func(keep bool) {
			before := size(e.db)
			var done int64
			if err := e.db.QueryRow(context.Background(), "SELECT count(*) FROM bench").Scan(&present); err != nil {
				b.Fatal(err)
			}
			eng := e.engine(func(c *phases.Config) {
				c.OnProgress = func(p backfill.Progress) { done = p.RowsDone }
				c.BackfillWorkers = workers
				// The CLI's default: with no other writer it only watches.
				c.BackfillYield = phases.DefaultBackfillYield
			})
			done2 := watchNeighbour()
			began := time.Now()
			res, err := eng.Start(context.Background(), parse(b, change.name, change.file))
			if err != nil {
				b.Fatalf("start: %s", pg.Explain(err))
			}
			startRuns = append(startRuns, time.Since(began))
			done2()
			backfillRuns = append(backfillRuns, res.Backfill)
			chose = res.BackfillWorkers
			backfillGrowth = append(backfillGrowth, size(e.db)-before)
			if done != present {
				b.Fatalf("backfill reported %d rows done, the table holds %d", done, present)
			}
			_ = e.db.QueryRow(context.Background(), "SELECT count(*) FROM pg_stats WHERE tablename = 'bench'").Scan(&analyzed)
			if !keep {
				e.rollback()
				e.exec(e.db, "VACUUM FULL bench")
			}
			reset()
		}
		plain()
		online(false)
		online(false)
		plain()
		plainUpdate, backfillTime, startTime := meanDur(plainRuns), meanDur(backfillRuns), meanDur(startRuns)
		ceiling := float64(rows) / plainUpdate.Seconds()
		rate := float64(present) / backfillTime.Seconds()
		startRate := float64(present) / startTime.Seconds()
		b.Logf("table: %d rows, pg_stats rows for it: %d (never analyzed)", rows, analyzed)
		b.Logf("1 and 2 in A B B A order, mean of each side; backfill workers: %d (asked: %d; 0 lets the engine choose: min(4, CPUs, rows/250k))", chose, workers)
		if neighbourTxns != nil {
			b.Logf("a busy neighbour database (pgbench TPC-B, 4 clients) ran through 1 and 2: %.0f tx/s during the plain runs, %.0f during online's (runs in A B B A order: %s)",
				(neighbourRate[0]+neighbourRate[3])/2, (neighbourRate[1]+neighbourRate[2])/2, fmtRatios(neighbourRate))
		}
		b.Logf("change: %s", change.desc)
		b.Logf("1. plain UPDATE: %s, %.0f rows/s (the ceiling); runs %s", plainUpdate.Round(time.Millisecond), ceiling, fmtDurs(plainRuns))
		b.Logf("2. online backfill of the same change:          %s, %.0f rows/s, ratio %.2f; runs %s", backfillTime.Round(time.Millisecond), rate, rate/ceiling, fmtDurs(backfillRuns))
		b.Logf("   the whole start (expand + backfill + publish): %s, %.0f rows/s, ratio %.2f (target >= 1.0); runs %s", startTime.Round(time.Millisecond), startRate, startRate/ceiling, fmtDurs(startRuns))
		b.Logf("   table growth (heap and indexes): plain UPDATE %s, online %s, ratio %.2f (target <= 1.0)", fmtBytes(plainGrowth), fmtBytes(backfillGrowth), float64(sum64(backfillGrowth))/float64(sum64(plainGrowth)))
		b.ReportMetric(rate/ceiling, "backfill/update")
		b.ReportMetric(startRate/ceiling, "start/update")
		b.ReportMetric(float64(sum64(backfillGrowth))/float64(sum64(plainGrowth)), "growth-ratio")
		if os.Getenv("ONLINE_BENCH_PARTS") == "12" {
			continue
		}
		// The table for 3 and 4: the migration in progress, as after a
		// start (not timed).
		online(true)

		// 3 and 4 on one and the same table, so that the backfill's dead
		// rows weigh on both sides alike: with the migration's triggers,
		// and with them dropped (not disabled: PostgreSQL still locks each
		// row an UPDATE touches when a table has a disabled BEFORE UPDATE
		// trigger, so a disabled trigger is not the plain table).
		defs := e.rows(e.db, `SELECT pg_get_triggerdef(oid) FROM pg_trigger
			WHERE tgrelid = 'bench'::regclass AND NOT tgisinternal ORDER BY tgname`)
		names := e.rows(e.db, `SELECT quote_ident(tgname) FROM pg_trigger
			WHERE tgrelid = 'bench'::regclass AND NOT tgisinternal ORDER BY tgname`)
		if len(defs) == 0 {
			b.Fatal("the migration installed no triggers on bench")
		}
		setTriggers := func(on bool) {
			for i := range defs {
				if on {
					e.exec(e.db, defs[i])
				} else {
					e.exec(e.db, "DROP TRIGGER "+names[i]+" ON bench")
				}
			}
		}
		// Runs alternate A B B A, so that a slow drift of the machine
		// (the table growing by the OLTP inserts, WAL files recycled,
		// the page cache) weighs on both sides alike, and each side's
		// figure is the mean over its runs: a best-of would reward the
		// luckiest run, not the typical one. Each run starts after a
		// VACUUM and a CHECKPOINT, so each pays the same full-page
		// images.
		abba := []bool{true, false, false, true}
		var bulk [2][]time.Duration // [plain, with triggers]
		var tps [2][]float64
		on := true
		side := func(on bool) int {
			if on {
				return 1
			}
			return 0
		}
		for k := 0; k < 2*len(abba); k++ {
			if want := abba[k%len(abba)]; want != on {
				setTriggers(want)
				on = want
			}
			reset()
			bulk[side(on)] = append(bulk[side(on)], timeExec(e, "UPDATE bench SET score = score + 1"))
		}
		// OLTP throughput on this machine moves by several percent from
		// one run to the next (fsync, the hypervisor), more than the
		// triggers cost, so it is measured in many short A B B A blocks:
		// each block gives one ratio, and the figure is their mean with a
		// 95% confidence interval.
		var blockRatios []float64
		for blk := 0; blk < oltpBlocks; blk++ {
			var in [2][]float64
			for _, want := range abba {
				if want != on {
					setTriggers(want)
					on = want
				}
				reset()
				x := oltp(b, e, oltpTime, rows)
				in[side(on)] = append(in[side(on)], x)
				tps[side(on)] = append(tps[side(on)], x)
			}
			blockRatios = append(blockRatios, mean(in[1])/mean(in[0]))
		}
		bulkPlain, bulkTrig := meanDur(bulk[0]), meanDur(bulk[1])
		oltpPlain, oltpTrig := mean(tps[0]), mean(tps[1])
		oltpRatio, oltpCI := meanCI(blockRatios)
		if !on {
			setTriggers(true)
		}
		e.rollback()

		b.Logf("3 and 4 run on the same table after the backfill, triggers in place vs dropped, runs in A B B A order, mean of each side")
		b.Logf("3. bulk UPDATE score of every row, %d runs each: plain %s, with triggers %s, ratio %.2f (target >= 0.85)", len(bulk[0]), bulkPlain.Round(time.Millisecond), bulkTrig.Round(time.Millisecond), bulkPlain.Seconds()/bulkTrig.Seconds())
		b.Logf("   runs plain %s, with triggers %s", fmtDurs(bulk[0]), fmtDurs(bulk[1]))
		b.Logf("4. OLTP, 4 clients, INSERT + UPDATE by key, %d A B B A blocks of runs of %s: plain %.0f tx/s, with triggers %.0f tx/s, ratio %.3f ± %.3f (95%% CI over blocks; target >= 0.95)", oltpBlocks, oltpTime, oltpPlain, oltpTrig, oltpRatio, oltpCI)
		b.Logf("   block ratios %s", fmtRatios(blockRatios))
		b.Logf("   runs plain %.0f, with triggers %.0f (tx/s)", tps[0], tps[1])
		b.ReportMetric(bulkPlain.Seconds()/bulkTrig.Seconds(), "bulk-ratio")
		b.ReportMetric(oltpRatio, "oltp-ratio")
	}
}

// rewriteChanges are the changes BenchmarkRewrite times in 1 and 2, by
// ONLINE_BENCH_CHANGE: each as a plain column and UPDATE, and as a file.
var rewriteChanges = map[string]struct {
	name, desc, plainAdd, plainUpdate, file string
}{
	"": {"lower_email", "alter_column email with up lower(email)",
		"ALTER TABLE bench ADD COLUMN email_new text", "UPDATE bench SET email_new = lower(email)", `
operations:
  - alter_column: { table: bench, column: email, up: "lower(email)", down: "email" }
`},
	"bigint": {"score_bigint", "alter_column score type int -> bigint",
		"ALTER TABLE bench ADD COLUMN score_new bigint", "UPDATE bench SET score_new = score", `
operations:
  - alter_column: { table: bench, column: score, type: bigint, up: "score", down: "score::integer" }
`},
}

func init() { rewriteChanges["lower"] = rewriteChanges[""] }

func sum64(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}

func fmtBytes(xs []int64) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf("%.0f MB", float64(x)/(1<<20))
	}
	return strings.Join(out, " ")
}

func meanDur(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func mean(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// meanCI returns the mean of xs and the half-width of its 95% confidence
// interval (Student's t; xs are taken as independent samples).
func meanCI(xs []float64) (float64, float64) {
	m := mean(xs)
	n := len(xs)
	if n < 2 {
		return m, math.NaN()
	}
	var ss float64
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	sd := math.Sqrt(ss / float64(n-1))
	// Two-sided 97.5% quantiles of Student's t for 1..10 degrees of
	// freedom; past that 2.2 is within 5% of the exact value.
	t := []float64{12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23}
	q := 2.2
	if n-1 <= len(t) {
		q = t[n-2]
	}
	return m, q * sd / math.Sqrt(float64(n))
}

func fmtRatios(xs []float64) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strconv.FormatFloat(x, 'f', 3, 64)
	}
	return strings.Join(out, " ")
}

func fmtDurs(ds []time.Duration) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond).String()
	}
	return strings.Join(out, " ")
}

func timeExec(e *env, sql string) time.Duration {
	began := time.Now()
	e.exec(e.db, sql)
	return time.Since(began)
}

// oltp runs 4 clients, each transaction one INSERT and one UPDATE by
// primary key, through the old version, and returns transactions/s.
func oltp(b *testing.B, e *env, d time.Duration, rows int) float64 {
	var n atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for c := 0; c < 4; c++ {
		wg.Add(1)
		conn := e.version("public")
		go func() {
			defer wg.Done()
			// Closed here, not at cleanup: a benchmark runs dozens of
			// these, more than max_connections would hold at once.
			defer conn.Close(context.Background())
			rng := rand.New(rand.NewPCG(uint64(c), 9))
			for time.Now().Before(stop) {
				tx, err := conn.Begin(context.Background())
				if err != nil {
					b.Error(err)
					return
				}
				if _, err := tx.Exec(context.Background(), "INSERT INTO bench (name, email, score) VALUES ('n', 'New@X.io', 1)"); err != nil {
					b.Error(err)
					return
				}
				if _, err := tx.Exec(context.Background(), "UPDATE bench SET score = score + 1 WHERE id = $1", rng.IntN(rows)+1); err != nil {
					b.Error(err)
					return
				}
				if err := tx.Commit(context.Background()); err != nil {
					b.Error(err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / d.Seconds()
}
