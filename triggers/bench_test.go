package triggers

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
)

// BenchmarkSyncTriggers measures what a migration's sync triggers cost the
// application's writes, on one table, in one run:
//
//	go test -bench . -run '^$' ./triggers
//
// ONLINE_BENCH_ROWS (default 1,000,000) sizes the table,
// ONLINE_BENCH_SECONDS (default 5) is the length of each OLTP run and
// ONLINE_BENCH_PAIRS (default 3) the number of plain/trigger pairs of runs.
//
// The migration is the one the engine would make for a rewrite of email to
// lower(email): a hidden _online_email text column, added and left NULL as
// before the backfill, with Up lower(email) and Down email.
func BenchmarkSyncTriggers(b *testing.B) {
	nRows := envInt(b, "ONLINE_BENCH_ROWS", 1_000_000)
	seconds := envInt(b, "ONLINE_BENCH_SECONDS", 5)
	pairs := envInt(b, "ONLINE_BENCH_PAIRS", 3)
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
	// reverse() changes every value and keeps the table the same size; two
	// runs restore the original values.
	const firingSQL = `UPDATE bench SET email = reverse(email)`
	duration := time.Duration(seconds) * time.Second

	// The server may be shared and its I/O noisy (other sessions' CREATE
	// and DROP DATABASE force checkpoints), so plain and trigger runs are
	// interleaved, each pair in the same conditions, and the best of each
	// kind is kept. The hidden column is added the first time the
	// migration is installed, in the same transaction as the triggers as
	// the engine does, and then kept: dropping and re-adding it would pile
	// up dropped attributes and, past eight attributes, widen every tuple's
	// null bitmap and header. With the NULL fifth attribute a tuple gets a
	// one-byte null bitmap, which fits in the padding of the 23-byte header
	// (24 bytes either way), so later plain runs are physically the same as
	// the first.
	m := &migration{conn: conn, table: tbl, rewrite: rw}
	var plainBulk, trigBulk []bulkResult
	for range pairs {
		plainBulk = append(plainBulk, bulkUpdate(b, conn, bulkSQL))
		m.install(b)
		trigBulk = append(trigBulk, bulkUpdate(b, conn, bulkSQL))
		m.uninstall(b)
	}
	plainFiring := bulkUpdate(b, conn, firingSQL)
	m.install(b)
	trigFiring := bulkUpdate(b, conn, firingSQL)
	m.uninstall(b)
	var plainOLTP, trigOLTP []oltpResult
	for run := range pairs {
		plainOLTP = append(plainOLTP, oltp(b, conn, url, nRows, duration, uint64(2*run)))
		m.install(b)
		trigOLTP = append(trigOLTP, oltp(b, conn, url, nRows, duration, uint64(2*run+1)))
		m.uninstall(b)
	}

	// The backfill's own statement, as the engine runs it: the new column
	// set from the old one with BackfillSetting on, so no trigger function
	// runs. What remains with the triggers in place is the row lock
	// PostgreSQL takes before any BEFORE UPDATE row trigger (it does so
	// for a disabled trigger too, which the third side shows). A B B A,
	// the column reset to NULL after each run.
	const backfillSQL = `UPDATE bench SET _online_email = lower(email)`
	var bfRuns [3][]bulkResult // plain, with triggers, triggers disabled
	backfillRun := func(side int) {
		pgtest.Exec(b, conn, `SELECT set_config('`+BackfillSetting+`', 'on', false)`)
		bfRuns[side] = append(bfRuns[side], bulkUpdate(b, conn, backfillSQL))
		pgtest.Exec(b, conn, `RESET "`+BackfillSetting+`"`, `UPDATE bench SET _online_email = NULL`)
	}
	backfillRun(0)
	m.install(b)
	backfillRun(1)
	backfillRun(1)
	pgtest.Exec(b, conn, `ALTER TABLE bench DISABLE TRIGGER USER`)
	backfillRun(2)
	pgtest.Exec(b, conn, `ALTER TABLE bench ENABLE TRIGGER USER`)
	m.uninstall(b)
	backfillRun(0)

	bestPlain, bestTrig := bestBulk(plainBulk), bestBulk(trigBulk)
	plainTPS, plainCPUTx := splitOLTP(plainOLTP)
	trigTPS, trigCPUTx := splitOLTP(trigOLTP)
	bestPlainTPS, bestTrigTPS := slices.Max(plainTPS), slices.Max(trigTPS)
	// Ratios are throughput ratios (triggers/plain): 1.0 means no cost.
	bulkRatio := bestPlain.time.Seconds() / bestTrig.time.Seconds()
	firingRatio := plainFiring.time.Seconds() / trigFiring.time.Seconds()
	oltpRatio := bestTrigTPS / bestPlainTPS
	fmt.Printf("bulk update runs (%s, %d rows): plain %v, with triggers %v\n", bulkSQL, nRows, times(plainBulk), times(trigBulk))
	fmt.Printf("bulk update: plain %s, with triggers %s, ratio %.3f (best of %d each; target >= 0.85)\n",
		round(bestPlain.time), round(bestTrig.time), bulkRatio, pairs)
	byCPU := func(a, b bulkResult) int { return cmp.Compare(a.cpu, b.cpu) }
	if plainCPU, trigCPU := slices.MinFunc(plainBulk, byCPU).cpu, slices.MinFunc(trigBulk, byCPU).cpu; plainCPU >= 0 && trigCPU >= 0 {
		fmt.Printf("bulk update server CPU (best of %d each): plain %s, with triggers %s, ratio %.3f\n",
			pairs, round(plainCPU), round(trigCPU), plainCPU.Seconds()/trigCPU.Seconds())
		b.ReportMetric(plainCPU.Seconds()/trigCPU.Seconds(), "bulk-cpu-ratio")
	}
	// WAL is what the statement itself wrote (EXPLAIN's WAL counters), so
	// unlike the time it does not depend on what else the server is doing.
	fmt.Printf("bulk update WAL: plain %s, with triggers %s (%+.2f records per row)\n",
		bestPlain.wal, bestTrig.wal, float64(bestTrig.walRecords-bestPlain.walRecords)/float64(nRows))
	fmt.Printf("bulk update firing the up trigger on every row (%s, 1 run each, informational): plain %s, with triggers %s, ratio %.3f, %+.2f us/row\n",
		firingSQL, round(plainFiring.time), round(trigFiring.time), firingRatio, (trigFiring.time-plainFiring.time).Seconds()*1e6/float64(nRows))
	fmt.Printf("oltp runs (4 clients, INSERT + UPDATE by key per tx, %s each): plain %.0f tx/s, with triggers %.0f tx/s\n",
		duration, plainTPS, trigTPS)
	fmt.Printf("oltp: plain %.0f tx/s, with triggers %.0f tx/s, ratio %.3f (best of %d each; target >= 0.95)\n",
		bestPlainTPS, bestTrigTPS, oltpRatio, pairs)

	meanCPU := func(rs []bulkResult) time.Duration {
		var sum time.Duration
		for _, r := range rs {
			if r.cpu < 0 {
				return -1
			}
			sum += r.cpu
		}
		return sum / time.Duration(len(rs))
	}
	fmt.Printf("backfill statement (%s, %s on) runs: plain %v, with triggers %v, triggers disabled %v\n",
		backfillSQL, BackfillSetting, times(bfRuns[0]), times(bfRuns[1]), times(bfRuns[2]))
	if p, t, d := meanCPU(bfRuns[0]), meanCPU(bfRuns[1]), meanCPU(bfRuns[2]); p >= 0 && t >= 0 && d >= 0 {
		fmt.Printf("backfill statement server CPU (mean, A B B A): plain %s, with triggers %s (ratio %.3f), triggers disabled %s (ratio %.3f)\n",
			round(p), round(t), p.Seconds()/t.Seconds(), round(d), p.Seconds()/d.Seconds())
		b.ReportMetric(p.Seconds()/t.Seconds(), "backfill-cpu-ratio")
	}
	fmt.Printf("backfill statement WAL: plain %s, with triggers %s, triggers disabled %s (%+.2f records per row with triggers)\n",
		bfRuns[0][0].wal, bfRuns[1][0].wal, bfRuns[2][0].wal, float64(bfRuns[1][0].walRecords-bfRuns[0][0].walRecords)/float64(nRows))

	if slices.Min(plainCPUTx) >= 0 && slices.Min(trigCPUTx) >= 0 {
		p, t := slices.Min(plainCPUTx), slices.Min(trigCPUTx)
		fmt.Printf("oltp server CPU per tx (best of %d each): plain %s, with triggers %s, ratio %.3f\n",
			pairs, p.Round(time.Microsecond), t.Round(time.Microsecond), p.Seconds()/t.Seconds())
		b.ReportMetric(p.Seconds()/t.Seconds(), "oltp-cpu-ratio")
	}

	b.ReportMetric(bestPlain.time.Seconds(), "bulk-plain-s")
	b.ReportMetric(bestTrig.time.Seconds(), "bulk-trig-s")
	b.ReportMetric(bulkRatio, "bulk-ratio")
	b.ReportMetric(bestPlainTPS, "oltp-plain-tx/s")
	b.ReportMetric(bestTrigTPS, "oltp-trig-tx/s")
	b.ReportMetric(oltpRatio, "oltp-ratio")
}

// migration installs and removes the benchmark's rewrite.
type migration struct {
	conn        *pgx.Conn
	table       Table
	rewrite     Rewrite
	columnAdded bool
}

func (m *migration) install(b *testing.B) {
	b.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, m.conn, func(tx pgx.Tx) error {
		if !m.columnAdded {
			if _, err := tx.Exec(ctx, `ALTER TABLE bench ADD COLUMN _online_email text`); err != nil {
				return err
			}
		}
		for _, s := range Create(m.table, m.rewrite) {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%w\n%s", err, s)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("install the migration: %v", err)
	}
	m.columnAdded = true
}

func (m *migration) uninstall(b *testing.B) {
	b.Helper()
	pgtest.Exec(b, m.conn, Drop(m.table, m.rewrite)...)
	// Rows the trigger runs converted go back to the pre-backfill state.
	pgtest.Exec(b, m.conn, `UPDATE bench SET _online_email = NULL WHERE _online_email IS NOT NULL`)
}

func splitOLTP(rs []oltpResult) (tps []float64, cpuPerTx []time.Duration) {
	for _, r := range rs {
		tps = append(tps, r.tps)
		cpuPerTx = append(cpuPerTx, r.cpuPerTx)
	}
	return tps, cpuPerTx
}

type bulkResult struct {
	time       time.Duration
	cpu        time.Duration // of the server backend; -1 if not measurable
	wal        string        // EXPLAIN's "records=... fpi=... bytes=..."
	walRecords int64
}

func bestBulk(rs []bulkResult) bulkResult {
	return slices.MinFunc(rs, func(a, b bulkResult) int { return cmp.Compare(a.time, b.time) })
}

func times(rs []bulkResult) []time.Duration {
	out := make([]time.Duration, len(rs))
	for i, r := range rs {
		out[i] = round(r.time)
	}
	return out
}

var walLine = regexp.MustCompile(`WAL: (records=(\d+).*)`)

// bulkUpdate runs sql once and returns its time and the WAL it wrote. Before
// the run the table is rewritten compactly (VACUUM FULL), vacuumed
// (visibility map, hint bits) and checkpointed, so every run, with or
// without triggers, starts from the same physical state: same pages, no dead
// tuples, no dirty buffers, and the same full-page images to write after the
// checkpoint. The statement runs under EXPLAIN (ANALYZE, WAL, TIMING OFF),
// which executes it in full, triggers included, without per-row clock calls.
func bulkUpdate(b *testing.B, conn *pgx.Conn, sql string) bulkResult {
	b.Helper()
	pgtest.Exec(b, conn, `VACUUM FULL bench`, `VACUUM ANALYZE bench`, `CHECKPOINT`)
	cpu0 := backendCPU(b, conn)
	start := time.Now()
	plan := pgtest.QueryStrings(b, conn, `EXPLAIN (ANALYZE, WAL, TIMING OFF, COSTS OFF) `+sql)
	r := bulkResult{time: time.Since(start), cpu: -1}
	if cpu1 := backendCPU(b, conn); cpu0 >= 0 && cpu1 >= 0 {
		r.cpu = cpu1 - cpu0
	}
	for _, line := range plan {
		// The first WAL line is the Update node's, the statement's total.
		if m := walLine.FindStringSubmatch(line); m != nil {
			r.wal = m[1]
			r.walRecords, _ = strconv.ParseInt(m[2], 10, 64)
			break
		}
	}
	return r
}

// backendCPU returns the CPU time (user + system) the server process of conn
// has used, read from /proc when the server runs on this machine, or -1.
// On a machine shared with other work the wall-clock time of a statement
// says as much about the neighbours as about the statement; its backend's
// CPU time does not.
func backendCPU(b *testing.B, conn *pgx.Conn) time.Duration {
	b.Helper()
	return processCPU(backendPID(b, conn))
}

func backendPID(b *testing.B, conn *pgx.Conn) int {
	b.Helper()
	var pid int
	if err := conn.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		b.Fatal(err)
	}
	return pid
}

func processCPU(pid int) time.Duration {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.HasPrefix(string(cmdline), "postgres") {
		return -1 // not local, or not the server
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// Fields after "(comm)": state is the first; utime and stime, in clock
	// ticks (USER_HZ, 100 on Linux), are the 12th and 13th.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

type oltpResult struct {
	tps      float64
	cpuPerTx time.Duration // server CPU per transaction; -1 if not measurable
}

// oltp runs 4 clients for d, each transaction one INSERT of a new row plus
// one UPDATE of score of a random existing row by primary key, and returns
// the rate in transactions per second and the server CPU per transaction.
// The rows it inserted are deleted afterwards so that later runs see the
// same table.
func oltp(b *testing.B, conn *pgx.Conn, url string, nRows int, d time.Duration, seed uint64) oltpResult {
	b.Helper()
	const clients = 4
	ctx := context.Background()
	// Fresh connections per run, opened before the clock starts.
	conns := make([]*pgx.Conn, clients)
	pids := make([]int, clients)
	for i := range conns {
		c, err := pg.Connect(ctx, url, pg.Options{ApplicationName: "online-bench"})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close(ctx)
		conns[i] = c
		pids[i] = backendPID(b, c)
	}
	serverCPU := func() time.Duration {
		var sum time.Duration
		for _, pid := range pids {
			c := processCPU(pid)
			if c < 0 {
				return -1
			}
			sum += c
		}
		return sum
	}
	// One transaction of client w; n numbers its rows.
	txn := func(c *pgx.Conn, w, n int, rng *rand.Rand) error {
		// Statements run on a background context: a deadline firing
		// mid-transaction would count as an error.
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO bench (name, email, score) VALUES ($1, $2, $3)`,
				fmt.Sprintf("client %d row %d", w, n), fmt.Sprintf("Client%d.Row%d@Example.com", w, n), n%1000); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE bench SET score = score + 1 WHERE id = $1`, rng.Int64N(int64(nRows))+1)
			return err
		})
	}
	// Warm up each connection outside the measurement: the first
	// transactions load catalog caches, prepare the statements and compile
	// the trigger function, once per connection.
	const warmup = 50
	for w, c := range conns {
		rng := rand.New(rand.NewPCG(seed, uint64(w)+1000))
		for n := 0; n < warmup; n++ {
			if err := txn(c, w, -1-n, rng); err != nil {
				b.Fatalf("oltp warm-up: %v", err)
			}
		}
	}
	pgtest.Exec(b, conn, `VACUUM ANALYZE bench`, `CHECKPOINT`)
	var done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	cpu0 := serverCPU()
	start := time.Now()
	deadline := start.Add(d)
	for w, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for n := 0; time.Now().Before(deadline); n++ {
				if err := txn(c, w, n, rng); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1 := serverCPU()
	if firstErr != nil {
		b.Fatalf("oltp: %v", firstErr)
	}
	pgtest.Exec(b, conn, fmt.Sprintf(`DELETE FROM bench WHERE id > %d`, nRows))
	r := oltpResult{tps: float64(done.Load()) / elapsed.Seconds(), cpuPerTx: -1}
	if cpu0 >= 0 && cpu1 >= 0 && done.Load() > 0 {
		r.cpuPerTx = (cpu1 - cpu0) / time.Duration(done.Load())
	}
	return r
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

func rounds(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = round(d)
	}
	return out
}
