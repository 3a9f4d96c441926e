package phases_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/onlinepg/online/backfill"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/state"
)

const accountsTable = `CREATE TABLE accounts (id bigserial PRIMARY KEY, email text NOT NULL, balance int NOT NULL DEFAULT 0)`

func accountsRows(n int) string {
	return fmt.Sprintf("INSERT INTO accounts (email, balance) SELECT 'User' || g || '@Example.COM', g %% 1000 FROM generate_series(1, %d) g", n)
}

// The migration under test: a conversion (lower) and a type change on one table.
const lowerEmail = `
operations:
  - alter_column: { table: accounts, column: email, up: "lower(email)", down: "email" }
  - alter_column: { table: accounts, column: balance, type: bigint }
`

// tableDigest summarises a table's data, to prove a rollback changed none.
func (e *env) tableDigest(table string) string {
	e.t.Helper()
	var d string
	if err := e.db.QueryRow(ctx(), fmt.Sprintf("SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM %s t", pg.Ident("public", table))).Scan(&d); err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *env) backfillDone() int64 {
	var n int64
	_ = e.db.QueryRow(ctx(), "SELECT coalesce(sum(rows_done), 0) FROM online.backfills").Scan(&n)
	return n
}

// TestWritersDuringBackfill writes through the old version before, during
// and after the backfill, and through the new version from the moment it is
// published until after complete. No write may fail, and every row must end
// holding exactly what the migration defines.
func TestWritersDuringBackfill(t *testing.T) {
	t.Parallel()
	writersDuringBackfill(t, 1, phases.Off)
}

// TestWritersDuringParallelBackfill is TestWritersDuringBackfill with three
// backfill workers walking their ranges at once.
func TestWritersDuringParallelBackfill(t *testing.T) {
	t.Parallel()
	writersDuringBackfill(t, 3, phases.Off)
}

// TestWritersDuringYieldingBackfill is TestWritersDuringBackfill with two
// workers that yield to the writers (Config.BackfillYield): the governor
// must see the writers and slow the backfill (a duty cycle below 1 in the
// progress), and every row must still be right. The yield asked, 0.99,
// makes any dent in the writers' rate a reason to slow down, so that the
// test does not depend on how much this machine's writers suffer.
func TestWritersDuringYieldingBackfill(t *testing.T) {
	t.Parallel()
	writersDuringBackfill(t, 2, 0.99)
}

// governorLines keeps the log lines of the backfill's governor and phases.
func governorLines(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "yield") || strings.Contains(l, "duty") || strings.Contains(l, "held") || strings.Contains(l, "governor") ||
			strings.Contains(l, `"phase"`) || strings.Contains(l, "workers chosen") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func writersDuringBackfill(t *testing.T, workers int, yield float64) {
	rows, writers := 60000, 4
	if yield > 0 {
		// Long enough for the governor's first periods.
		rows = 300000
	}
	e := newEnv(t, accountsTable, accountsRows(rows))
	vs := "public_lower"

	var (
		mu       sync.Mutex
		expected = map[int64][2]string{} // id → email, balance as the new version must show them
		failures atomic.Int64
		writes   atomic.Int64
		firstErr atomic.Value
	)
	record := func(id int64, email string, balance int64) {
		mu.Lock()
		expected[id] = [2]string{email, fmt.Sprint(balance)}
		mu.Unlock()
	}
	// writeRow updates a row and records what it then holds, under a lock
	// per row (striped): the old and the new version's writer of a row
	// then commit in the order they record, so the expected value is the
	// one committed last. Without it, a writer could record after another
	// that committed later.
	var rowLocks [1024]sync.Mutex
	writeRow := func(conn *pgx.Conn, id int64, email string, bal int64, want string) error {
		l := &rowLocks[id%int64(len(rowLocks))]
		l.Lock()
		defer l.Unlock()
		if _, err := conn.Exec(ctx(), "UPDATE accounts SET email = $1, balance = $2 WHERE id = $3", email, bal, id); err != nil {
			return err
		}
		record(id, want, bal)
		return nil
	}
	fail := func(err error) {
		failures.Add(1)
		firstErr.CompareAndSwap(nil, err)
	}
	stopOld, stopNew := make(chan struct{}), make(chan struct{})
	// The old writers have their own group: complete must wait until the
	// last of them has returned. An old-version write still queued behind
	// complete's lock would land in the new shape afterwards, as the old
	// code is supposed to be retired by then.
	var wg, wgOld sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		wgOld.Add(1)
		// Old version: mixed-case emails, owned rows (id % writers == w) so
		// that the expected value of a row is known.
		go func() {
			defer wgOld.Done()
			conn := e.version("public")
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				select {
				case <-stopOld:
					return
				default:
				}
				id := int64(rng.IntN(rows/writers)*writers + w + 1)
				email := fmt.Sprintf("Old%d@Mixed.Case", rng.IntN(1e6))
				bal := int64(rng.IntN(1e6))
				if err := writeRow(conn, id, email, bal, strings.ToLower(email)); err != nil {
					fail(err)
					continue
				}
				var nid int64
				if err := conn.QueryRow(ctx(), "INSERT INTO accounts (email, balance) VALUES ($1, 1) RETURNING id", "Ins"+email).Scan(&nid); err != nil {
					fail(err)
					continue
				}
				record(nid, strings.ToLower("Ins"+email), 1)
				writes.Add(2)
			}
		}()
		// New version: starts once published; writes lower-case emails.
		go func() {
			defer wg.Done()
			conn := e.version(vs + ", public")
			for {
				var published bool
				if err := conn.QueryRow(ctx(), "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", vs).Scan(&published); err != nil {
					fail(err)
					return
				}
				if published {
					break
				}
				select {
				case <-stopNew:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			for {
				select {
				case <-stopNew:
					return
				default:
				}
				id := int64(rng.IntN(rows/writers)*writers + w + 1)
				email := fmt.Sprintf("new%d@lower.case", rng.IntN(1e6))
				// Balances fit the old version's int, or down's cast would
				// (rightly) refuse them.
				bal := int64(2e9) + int64(rng.IntN(1000))
				if err := writeRow(conn, id, email, bal, email); err != nil {
					fail(err)
					continue
				}
				writes.Add(1)
			}
		}()
	}
	_ = writers
	time.Sleep(300 * time.Millisecond)
	var minDuty atomic.Value
	minDuty.Store(1.0)
	// The governor's debug lines, shown when it did not do its job.
	var logs syncBuffer
	eng := e.engine(func(c *phases.Config) {
		c.Log = zerolog.New(&logs).Level(zerolog.DebugLevel).With().Timestamp().Logger()
		c.BackfillBatchTime = 20 * time.Millisecond
		c.BackfillWorkers = workers
		c.BackfillYield = yield
		if yield > 0 {
			// The backfill must outlast the governor's glance, its probe
			// and a few periods however fast this machine is, or loaded
			// (a faster backfill could end before the first cut): at
			// most 30k rows a second, it lasts 10 s at least. The
			// governor's counts come as sessions publish their
			// statistics, about once a second, so its first cut may
			// take a few seconds.
			c.BackfillRate = 30000
		}
		c.OnProgress = func(p backfill.Progress) {
			if p.Duty > 0 && p.Duty < minDuty.Load().(float64) {
				minDuty.Store(p.Duty)
			}
		}
	})
	if _, err := eng.Start(ctx(), parse(t, "lower", lowerEmail)); err != nil {
		close(stopOld)
		close(stopNew)
		wgOld.Wait()
		wg.Wait()
		t.Fatalf("start: %s", pg.Explain(err))
	}
	time.Sleep(500 * time.Millisecond)
	close(stopOld)
	wgOld.Wait()
	e.complete()
	time.Sleep(200 * time.Millisecond)
	close(stopNew)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d writes failed; first: %v", n, writes.Load(), firstErr.Load())
	}
	got := map[int64][2]string{}
	for _, r := range e.rows(e.db, "SELECT id, email, balance FROM accounts") {
		var id int64
		parts := strings.Split(r, "|")
		fmt.Sscan(parts[0], &id)
		got[id] = [2]string{parts[1], parts[2]}
	}
	bad := 0
	for id, v := range got {
		want, touched := expected[id]
		if !touched {
			want = [2]string{fmt.Sprintf("user%d@example.com", id), fmt.Sprint(id % 1000)}
		}
		if v != want {
			if bad < 5 {
				t.Errorf("row %d = %v, want %v", id, v, want)
			}
			bad++
		}
	}
	if bad > 0 || len(got) < rows {
		t.Fatalf("%d wrong rows of %d (writes: %d)", bad, len(got), writes.Load())
	}
	var ranges int
	if err := e.db.QueryRow(ctx(), "SELECT count(*) FROM online.backfills").Scan(&ranges); err != nil || ranges != phases.RangeCount(workers, int64(rows)) {
		t.Fatalf("%d backfill ranges (%v), want %d", ranges, err, phases.RangeCount(workers, int64(rows)))
	}
	// Each range's last checkpoint recorded the duty it ran at, for
	// online status: a share of time, 1 when not slowed.
	var badDuty int
	if err := e.db.QueryRow(ctx(), "SELECT count(*) FROM online.backfills WHERE NOT (duty > 0 AND duty <= 1)").Scan(&badDuty); err != nil || badDuty != 0 {
		t.Fatalf("%d checkpoints with a duty outside (0, 1] (%v)", badDuty, err)
	}
	duty := minDuty.Load().(float64)
	if yield > 0 && duty >= 1 {
		t.Fatalf("the backfill never yielded to %d writers (duty stayed 1); the governor's log:\n%s", writers, governorLines(logs.String()))
	}
	if yield < 0 && duty < 1 {
		t.Fatalf("the backfill yielded (duty %.2f) with BackfillYield off", duty)
	}
	t.Logf("%d rows checked, %d concurrent writes, 0 failures, %d backfill ranges, lowest duty %.2f", len(got), writes.Load(), ranges, duty)
	if os.Getenv("ONLINE_TEST_GOVERNOR_LOG") != "" {
		t.Logf("the governor's log:\n%s", governorLines(logs.String()))
	}
}

func TestRollbackDuringBackfill(t *testing.T) {
	t.Parallel()
	e := newEnv(t, accountsTable, accountsRows(40000))
	schemaBefore, dataBefore := e.dump(), e.tableDigest("accounts")
	eng := e.engine(func(c *phases.Config) { c.BackfillRate = 10000 })
	c, cancel := context.WithCancel(ctx())
	done := make(chan error, 1)
	go func() {
		_, err := eng.Start(c, parse(t, "lower", lowerEmail))
		done <- err
	}()
	for e.backfillDone() == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	// Complete must refuse: the source columns are not all copied.
	// Complete must refuse: the source columns are not all copied. While
	// start runs, its lock turns complete away first.
	// Without the engine's wait for a vanished lock holder: the holder here
	// is alive, and waiting could outlast the backfill.
	noWait := func(c *phases.Config) { c.LockWait = -1 }
	if _, err := e.engine(noWait).Complete(ctx()); !errors.Is(err, state.ErrBusy) && !errors.Is(err, phases.ErrBackfillUnfinished) {
		t.Fatalf("complete during the backfill: %v", err)
	}
	cancel()
	var intr *phases.InterruptedError
	if err := <-done; !errors.As(err, &intr) {
		t.Fatalf("cancelled start: %v, want an InterruptedError", err)
	}
	if _, err := e.engine().Complete(ctx()); !errors.Is(err, phases.ErrBackfillUnfinished) {
		t.Fatalf("complete after an interrupted backfill: %v, want ErrBackfillUnfinished", err)
	}
	e.rollback()
	if got := e.dump(); got != schemaBefore {
		t.Fatalf("rollback during backfill changed the schema:\n%s", got)
	}
	if got := e.tableDigest("accounts"); got != dataBefore {
		t.Fatal("rollback during backfill changed the data")
	}
	// And after the backfill, once published.
	e.start("lower", lowerEmail)
	e.rollback()
	if got := e.dump(); got != schemaBefore {
		t.Fatalf("rollback after backfill changed the schema:\n%s", got)
	}
	if got := e.tableDigest("accounts"); got != dataBefore {
		t.Fatal("rollback after backfill changed the data")
	}
}

// TestKilledBackfillResumes runs start in a child process, kills it with
// SIGKILL midway through the backfill, then resumes and completes.
func TestKilledBackfillResumes(t *testing.T) {
	if os.Getenv("ONLINE_TEST_CHILD_URL") != "" {
		return // in the child, TestMain's hook does the work
	}
	t.Parallel()
	// A plain table, and one hash-partitioned into four leaves, which the
	// backfill walks one after the other: the kill lands in the middle of
	// the first, and the resumed start goes on from its checkpoint.
	for _, tc := range []struct{ name, table string }{
		{"table", accountsTable},
		{"partitioned", `CREATE TABLE accounts (id bigserial PRIMARY KEY, email text NOT NULL, balance int NOT NULL DEFAULT 0) PARTITION BY HASH (id);
			CREATE TABLE accounts_0 PARTITION OF accounts FOR VALUES WITH (MODULUS 4, REMAINDER 0);
			CREATE TABLE accounts_1 PARTITION OF accounts FOR VALUES WITH (MODULUS 4, REMAINDER 1);
			CREATE TABLE accounts_2 PARTITION OF accounts FOR VALUES WITH (MODULUS 4, REMAINDER 2);
			CREATE TABLE accounts_3 PARTITION OF accounts FOR VALUES WITH (MODULUS 4, REMAINDER 3)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			killAndResume(t, tc.table)
		})
	}
}

func killAndResume(t *testing.T, table string) {
	const rows = 50000
	e := newEnv(t, table, accountsRows(rows))
	e.killChildStartAt(rows / 5)
	killedAt := e.backfillDone()
	if killedAt >= rows {
		t.Fatalf("the backfill finished (%d rows) before the kill", killedAt)
	}
	if _, err := e.engine().Complete(ctx()); !errors.Is(err, phases.ErrBackfillUnfinished) {
		t.Fatalf("complete after the kill: %v, want ErrBackfillUnfinished", err)
	}
	res := e.start("lower", lowerEmail)
	if !res.Resumed {
		t.Fatal("start after the kill did not resume")
	}
	e.complete()
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM accounts WHERE email <> lower('User' || id || '@Example.COM') OR balance <> id % 1000")
	e.expectRows(e.db, []string{fmt.Sprint(rows)}, "SELECT count(*) FROM accounts")
	t.Logf("killed at %d of %d rows; resumed and completed", killedAt, rows)
}

// TestChildStart is the child process of TestKilledBackfillResumes.
func TestChildStart(t *testing.T) {
	url := os.Getenv("ONLINE_TEST_CHILD_URL")
	if url == "" {
		t.Skip("only runs as the child of TestKilledBackfillResumes")
	}
	workers, _ := strconv.Atoi(os.Getenv("ONLINE_TEST_CHILD_WORKERS"))
	eng, err := phases.Open(ctx(), phases.Config{URL: url, BackfillRate: 20000, BackfillBatchTime: 20 * time.Millisecond, BackfillWorkers: max(workers, 1)})
	if err != nil {
		t.Fatal(err)
	}
	m := parse(t, "lower", lowerEmail)
	if name := os.Getenv("ONLINE_TEST_CHILD_MOVE"); name != "" {
		mv := moveByName(t, name)
		m = parse(t, mv.Name, mv.YAML)
	}
	_, err = eng.Start(ctx(), m)
	t.Fatalf("the child should have been killed; start returned %v", err)
}

// killChildStartAt runs start in a child process (TestChildStart, with
// extra environment settings) and SIGKILLs it once the backfill has
// committed at least rows rows.
func (e *env) killChildStartAt(rows int64, env ...string) {
	e.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildStart$")
	cmd.Env = append(append(os.Environ(), "ONLINE_TEST_CHILD_URL="+e.url), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for e.backfillDone() < rows {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			e.t.Fatal("the child made no backfill progress")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		e.t.Fatal(err)
	}
	_ = cmd.Wait()
}
