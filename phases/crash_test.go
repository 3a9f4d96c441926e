package phases_test

// The crash suite: `online` is killed with SIGKILL at many points of start,
// complete and rollback, then the migration is carried on or rolled back,
// and every row and the catalog are checked.
//
// Each kill runs the engine in a child process (this test binary again, as
// TestKilledBackfillResumes does). Most kill points are reached
// deterministically with gates: a transaction of the test holds a lock (or
// a snapshot) that one particular step needs, so the child stops in that
// step, waiting, while everything before it has committed; in the backfill
// the gate is a row lock, which stops the child inside the batch that
// reaches a chosen row. The rest are kills after a random delay; their seed
// is logged (and named in every failure), and ONLINE_CRASH_SEED replays it.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/lifecycletest"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/state"
)

const (
	crashAccounts = 30000
	crashOrders   = 10000
	// crashRate stretches the child's backfill (about a second for
	// accounts), so that a gate can be closed while it runs and a random
	// kill often lands in it.
	crashRate = 30000

	envChildURL  = "ONLINE_CRASH_CHILD_URL"
	envChildOp   = "ONLINE_CRASH_CHILD_OP"
	envChildRate = "ONLINE_CRASH_CHILD_RATE"
	envCrashSeed = "ONLINE_CRASH_SEED"
)

// crashSetup builds the two tables. Every value is a function of id, so the
// result of the migration can be checked for every row in SQL.
// crash_nonneg backs the migration's check constraint; it sleeps on a few
// rows when crash.slow is on, which makes VALIDATE CONSTRAINT last long
// enough (~0.6 s) to be killed in.
var crashSetup = []string{
	`CREATE TABLE accounts (id bigserial PRIMARY KEY, email text NOT NULL, balance int NOT NULL DEFAULT 0, note text)`,
	fmt.Sprintf(`INSERT INTO accounts (email, balance, note) SELECT 'User' || g || '@Example.COM', g %% 1000, 'n' || (g %% 97) FROM generate_series(1, %d) g`, crashAccounts),
	`CREATE TABLE orders (id bigserial PRIMARY KEY, account_id bigint NOT NULL, amount int NOT NULL, status text)`,
	fmt.Sprintf(`INSERT INTO orders (account_id, amount, status) SELECT g %% %d + 1, g * 3, 's' || (g %% 5) FROM generate_series(1, %d) g`, crashAccounts, crashOrders),
	`CREATE TABLE crash_gate (id int)`,
	`CREATE FUNCTION crash_nonneg(v bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	IF v % 500 = 0 AND current_setting('crash.slow', true) = 'on' THEN
		PERFORM pg_sleep(0.01);
	END IF;
	RETURN v >= 0;
END $$`,
	`ANALYZE accounts, orders`,
}

// crashMigration has steps of every kind on two tables, so that a gate on
// one table stops the child between steps on the other:
//
//	expand:   1 add tier (accounts)  2 CREATE INDEX CONCURRENTLY (accounts)
//	          3 hidden columns + triggers (accounts)  4 the same (orders)
//	backfill: task 0 accounts, task 1 orders
//	finish:   5 balance_nonneg NOT VALID  6 VALIDATE  7 CREATE INDEX CONCURRENTLY
//	          8-11 NOT NULL checks of accounts  12-13 of orders
//	contract: 1 rename (orders)  2-3 swaps (accounts)  4 swap (orders)
const crashMigration = `
operations:
  - add_column: { table: accounts, column: { nullable: true, name: tier, type: text, default: "'basic'" } }
  - create_index: { table: accounts, name: accounts_note_idx, columns: [note] }
  - alter_column: { table: accounts, column: email, up: "lower(email)", down: "email" }
  - alter_column: { table: accounts, column: balance, type: bigint, check: { name: balance_nonneg, constraint: "crash_nonneg(balance)" } }
  - rename_column: { table: orders, from: status, to: state }
  - alter_column: { table: orders, column: amount, type: bigint }
  - create_index: { table: accounts, name: accounts_email_idx, columns: [email] }
`

const (
	crashExpandSteps = 4
	crashAllSteps    = 13
)

// TestCrashChild is the child process of the crash tests: it runs one
// engine command and exits 0, 3 when another online process or migration
// is in the way (as the CLI does), 1 on any other error.
func TestCrashChild(t *testing.T) {
	url := os.Getenv(envChildURL)
	if url == "" {
		t.Skip("only runs as the child of the crash tests")
	}
	rate, _ := strconv.ParseFloat(os.Getenv(envChildRate), 64)
	eng, err := phases.Open(ctx(), phases.Config{
		URL: url, BackfillRate: rate, BackfillBatchTime: 20 * time.Millisecond,
		LockTimeout: 200 * time.Millisecond, LockRetryDeadline: time.Minute,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: open: %v\n", err)
		os.Exit(1)
	}
	op := os.Getenv(envChildOp)
	switch op {
	case "start":
		_, err = eng.Start(ctx(), parse(t, "crash", crashMigration))
	case "complete":
		_, err = eng.Complete(ctx())
	case "rollback":
		_, err = eng.Rollback(ctx())
	default:
		err = fmt.Errorf("unknown child command %q", op)
	}
	_ = eng.Close(ctx())
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: %s: %s\n", op, pg.Explain(err))
		var inProg *phases.InProgressError
		if errors.Is(err, state.ErrBusy) || errors.As(err, &inProg) {
			os.Exit(3)
		}
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "child: %s: done\n", op)
	os.Exit(0)
}

// crashOutput collects a child's output; the exec package writes to it
// from its own goroutine.
type crashOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *crashOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *crashOutput) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// child is a running child process.
type crashProc struct {
	cmd    *exec.Cmd
	out    *crashOutput
	exited chan struct{}
	err    error // of Wait, once exited is closed
}

func startCrashProc(t testing.TB, url, op string, rate float64) *crashProc {
	t.Helper()
	c := &crashProc{out: &crashOutput{}, exited: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	c.cmd.Env = append(os.Environ(), envChildURL+"="+url, envChildOp+"="+op, envChildRate+"="+strconv.FormatFloat(rate, 'f', -1, 64))
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() { c.kill() })
	return c
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *crashProc) kill() {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

func (c *crashProc) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

func (c *crashProc) exitCode() int {
	<-c.exited
	return c.cmd.ProcessState.ExitCode()
}

// gate is a transaction of the test that holds a lock or a snapshot some
// step of the child needs.
type crashGate struct {
	conn *pgx.Conn
	tx   pgx.Tx
	done bool
}

func (g *crashGate) release() {
	if g.done {
		return
	}
	g.done = true
	_ = g.tx.Rollback(context.Background())
	_ = g.conn.Close(context.Background())
}

// crashRun is one kill: a database, a child, and the gates in its way.
type crashRun struct {
	t     *testing.T
	e     *env
	child *crashProc
	bg    *crashBG // an engine command of this process, when no child
	gates []*crashGate
	seed  uint64
}

func (r *crashRun) fatalf(format string, args ...any) {
	r.t.Helper()
	out := ""
	if r.child != nil {
		r.child.kill()
		out = "\nchild output:\n" + r.child.out.String()
	}
	r.t.Fatalf("%s (crash seed %d; replay with %s=%d)%s", fmt.Sprintf(format, args...), r.seed, envCrashSeed, r.seed, out)
}

// lockGate holds ACCESS SHARE on relation: it lets reads and row writes
// through and stops any ALTER (and DROP) of it, which the engine then
// retries under lock_timeout until the gate opens.
func (r *crashRun) lockGate(relation string) *crashGate {
	r.t.Helper()
	g := r.openGate("BEGIN")
	if _, err := g.tx.Exec(ctx(), "LOCK TABLE "+relation+" IN ACCESS SHARE MODE"); err != nil {
		r.fatalf("lock gate on %s: %v", relation, err)
	}
	return g
}

// rowGate holds one row of table FOR UPDATE, as an application's
// transaction would: a backfill batch that reaches it waits.
func (r *crashRun) rowGate(table string, id int64) *crashGate {
	r.t.Helper()
	g := r.openGate("BEGIN")
	if _, err := g.tx.Exec(ctx(), "SELECT 1 FROM "+table+" WHERE id = $1 FOR UPDATE", id); err != nil {
		r.fatalf("row gate on %s %d: %v", table, id, err)
	}
	return g
}

// snapshotGate holds a REPEATABLE READ snapshot (on a table the migration
// does not touch, so it takes no lock in the way): CREATE INDEX
// CONCURRENTLY waits, before it can mark its index valid, for every
// transaction with an older snapshot.
func (r *crashRun) snapshotGate() *crashGate {
	r.t.Helper()
	g := r.openGate("BEGIN ISOLATION LEVEL REPEATABLE READ")
	if _, err := g.tx.Exec(ctx(), "SELECT count(*) FROM crash_gate"); err != nil {
		r.fatalf("snapshot gate: %v", err)
	}
	return g
}

func (r *crashRun) openGate(begin string) *crashGate {
	r.t.Helper()
	conn := r.e.version("public")
	tx, err := conn.BeginTx(ctx(), pgx.TxOptions{})
	if begin != "BEGIN" {
		tx, err = conn.BeginTx(ctx(), pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	}
	if err != nil {
		r.fatalf("open gate: %v", err)
	}
	g := &crashGate{conn: conn, tx: tx}
	r.gates = append(r.gates, g)
	return g
}

func (r *crashRun) releaseGates() {
	for _, g := range r.gates {
		g.release()
	}
}

// crashState is the migration's row in online.migrations.
type crashState struct {
	exists          bool
	phase           string
	steps, contract int
}

func (s crashState) String() string {
	if !s.exists {
		return "no migration recorded"
	}
	return fmt.Sprintf("phase %s, steps_done %d, contract_done %d", s.phase, s.steps, s.contract)
}

func (r *crashRun) state() crashState {
	var s crashState
	var ok bool
	if err := r.e.db.QueryRow(ctx(), "SELECT to_regclass('online.migrations') IS NOT NULL").Scan(&ok); err != nil || !ok {
		return s
	}
	err := r.e.db.QueryRow(ctx(), "SELECT phase, steps_done, contract_done FROM online.migrations WHERE name = 'crash'").Scan(&s.phase, &s.steps, &s.contract)
	s.exists = err == nil
	return s
}

// rowsDone is the committed progress of backfill task, and whether it is done.
func (r *crashRun) rowsDone(task int) (int64, bool) {
	var n int64
	var done bool
	var ok bool
	if err := r.e.db.QueryRow(ctx(), "SELECT to_regclass('online.backfills') IS NOT NULL").Scan(&ok); err != nil || !ok {
		return 0, false
	}
	_ = r.e.db.QueryRow(ctx(), "SELECT rows_done, done FROM online.backfills WHERE migration = 'crash' AND task = $1", task).Scan(&n, &done)
	return n, done
}

// engineBackend describes the engine's session (application_name 'online')
// in this test's database: whether it waits for a lock, and its statement.
func (r *crashRun) engineBackend() (active, waitsLock bool, query string) {
	var state, waitType string
	err := r.e.db.QueryRow(ctx(), `SELECT coalesce(state, ''), coalesce(wait_event_type, ''), coalesce(query, '')
FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'online' LIMIT 1`).Scan(&state, &waitType, &query)
	if err != nil {
		return false, false, ""
	}
	return state == "active", state == "active" && waitType == "Lock", query
}

// waitsOnLockIn reports whether the engine waits for a lock in a statement
// starting with prefix.
func (r *crashRun) waitsOnLockIn(prefix string) bool {
	_, waits, q := r.engineBackend()
	return waits && strings.HasPrefix(strings.TrimSpace(q), prefix)
}

// runs reports whether the engine is running a statement containing s.
func (r *crashRun) runs(s string) bool {
	active, _, q := r.engineBackend()
	return active && strings.Contains(q, s)
}

// until polls cond until it holds; the child must still be running.
func (r *crashRun) until(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if r.child != nil && !r.child.running() {
			r.fatalf("the child exited (code %d) before %s; state: %s", r.child.exitCode(), what, r.state())
		}
		if r.bg != nil {
			select {
			case <-r.bg.done:
				r.fatalf("the engine returned (%v) before %s; state: %s", r.bg.err, what, r.state())
			default:
			}
		}
		if time.Now().After(deadline) {
			r.fatalf("timed out waiting until %s; state: %s", what, r.state())
		}
		time.Sleep(3 * time.Millisecond)
	}
}

// expect checks the recorded progress at the kill point.
func (r *crashRun) expect(phase string, steps int) {
	r.t.Helper()
	s := r.state()
	if !s.exists || s.phase != phase || (steps >= 0 && s.steps != steps) {
		r.fatalf("at the kill point: %s, want phase %s, steps_done %d", s, phase, steps)
	}
}

func (r *crashRun) expectContract(n int) {
	r.t.Helper()
	if s := r.state(); s.contract != n {
		r.fatalf("at the kill point: %s, want contract_done %d", s, n)
	}
}

// waitForOrphans waits until the server has ended the killed child's
// session. One busy in a statement notices that its client is gone only
// when the statement ends, or, with the engine's
// client_connection_check_interval (PostgreSQL 14+), within a second; until
// then it holds the schema's advisory lock, and a resume would be turned
// away with state.ErrBusy. The gates are still closed here, so a statement
// waiting at one (a concurrent index build) can only end by that check.
func (r *crashRun) waitForOrphans() {
	r.t.Helper()
	const limit = 20 * time.Second
	deadline := time.Now().Add(limit)
	for {
		var n int
		if err := r.e.db.QueryRow(ctx(), "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'online'").Scan(&n); err != nil {
			r.fatalf("pg_stat_activity: %v", err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.fatalf("the killed child's session is still there after %s", limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runEngine runs fn on an engine that is closed right after, so that no
// idle session named 'online' stays around to be mistaken for the child's.
func runEngine[T any](t testing.TB, url string, fn func(*phases.Engine) (T, error)) (T, error) {
	t.Helper()
	eng, err := phases.Open(ctx(), phases.Config{URL: url, LockTimeout: 500 * time.Millisecond, LockRetryDeadline: 30 * time.Second, BackfillBatchTime: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("open engine: %v", err)
	}
	defer eng.Close(ctx())
	return fn(eng)
}

func crashStart(t testing.TB, url string) (*phases.Result, error) {
	return runEngine(t, url, func(eng *phases.Engine) (*phases.Result, error) {
		return eng.Start(ctx(), parse(t, "crash", crashMigration))
	})
}

func crashComplete(t testing.TB, url string) (*phases.Result, error) {
	return runEngine(t, url, func(eng *phases.Engine) (*phases.Result, error) { return eng.Complete(ctx()) })
}

func crashRollback(t testing.TB, url string) (*phases.Result, error) {
	return runEngine(t, url, func(eng *phases.Engine) (*phases.Result, error) { return eng.Rollback(ctx()) })
}

// crashBaseline is what a rollback must restore.
type crashBaseline struct{ dump, accounts, orders string }

func takeCrashBaseline(e *env) crashBaseline {
	return crashBaseline{dump: e.dump(), accounts: e.tableDigest("accounts"), orders: e.tableDigest("orders")}
}

// checkRolledBack: the schema dump and the data are exactly as before
// start, and nothing of the migration is left in the state schema either.
func checkRolledBack(e *env, b crashBaseline, where string) {
	e.t.Helper()
	if got := e.dump(); got != b.dump {
		e.t.Fatalf("%s: rollback did not restore the schema:\n--- before\n%s\n--- after\n%s", where, b.dump, got)
	}
	if e.tableDigest("accounts") != b.accounts || e.tableDigest("orders") != b.orders {
		e.t.Fatalf("%s: rollback changed the data", where)
	}
	if e.schemaExists("public_crash") {
		e.t.Fatalf("%s: rollback left the version schema", where)
	}
	e.expectRows(e.db, []string{"0"}, "SELECT count(*) FROM pg_proc WHERE proname LIKE '\\_online\\_%'")
	if ok := e.rows(e.db, "SELECT to_regclass('online.migrations') IS NOT NULL")[0]; ok == "true" {
		e.expectRows(e.db, []string{"0|0"}, "SELECT (SELECT count(*) FROM online.migrations), (SELECT count(*) FROM online.backfills)")
	}
}

// crashWrites writes through the old version while the migration is left
// half done: the sync triggers (when expand got that far) or the resumed
// backfill must bring these rows into the new columns too. The values keep
// the per-row formulas that checkMigrated verifies.
func crashWrites(e *env) int {
	old := e.version("public")
	e.exec(old, "UPDATE accounts SET email = upper(email), balance = balance WHERE id % 101 = 0")
	e.exec(old, fmt.Sprintf("INSERT INTO accounts (id, email, balance, note) SELECT g, 'USER' || g || '@EXAMPLE.com', g %% 1000, 'new' FROM generate_series(%d, %d) g", crashAccounts+1, crashAccounts+25))
	e.exec(old, "UPDATE orders SET amount = id * 3 WHERE id % 53 = 0")
	return 25
}

// checkMigrated: every row holds what the migration defines, in the right
// types, and the catalog is the completed migration's, with nothing of the
// machinery (hidden columns, triggers, invalid indexes) left.
func checkMigrated(e *env, extraAccounts int, where string) {
	e.t.Helper()
	chk := func(want, sql string) {
		e.t.Helper()
		if got := strings.Join(e.rows(e.db, sql), ","); got != want {
			e.t.Fatalf("%s: %s\n got: %s\nwant: %s", where, sql, got, want)
		}
	}
	chk(strconv.Itoa(crashAccounts+extraAccounts), "SELECT count(*) FROM accounts")
	chk("0", "SELECT count(*) FROM accounts WHERE email IS DISTINCT FROM lower('User' || id || '@Example.COM') OR balance IS DISTINCT FROM id % 1000 OR tier IS DISTINCT FROM 'basic'")
	chk(strconv.Itoa(crashOrders), "SELECT count(*) FROM orders")
	chk("0", "SELECT count(*) FROM orders WHERE amount IS DISTINCT FROM id * 3 OR state IS DISTINCT FROM 's' || (id % 5)")
	chk("bigint|bigint", "SELECT (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'accounts'::regclass AND attname = 'balance'), (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'amount')")
	chk("0", "SELECT count(*) FROM pg_attribute WHERE attrelid IN ('accounts'::regclass, 'orders'::regclass) AND attname LIKE '\\_online%' AND NOT attisdropped")
	chk("0", "SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('accounts'::regclass, 'orders'::regclass) AND NOT tgisinternal")
	chk("0", "SELECT count(*) FROM pg_proc WHERE proname LIKE '\\_online\\_%'")
	chk("0", "SELECT count(*) FROM pg_index WHERE NOT indisvalid")
	chk("CREATE INDEX accounts_email_idx ON public.accounts USING btree (email),CREATE INDEX accounts_note_idx ON public.accounts USING btree (note)",
		"SELECT indexdef FROM pg_indexes WHERE tablename = 'accounts' AND indexname <> 'accounts_pkey' ORDER BY indexname")
	chk("balance_nonneg|true", "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'accounts'::regclass AND contype = 'c'")
	chk("complete|public_crash", "SELECT phase, version_schema FROM online.migrations WHERE name = 'crash'")
	// The new version reads the same rows.
	e.expectRows(e.version("public_crash"), []string{"user7@example.com|7|basic"}, "SELECT email, balance, tier FROM accounts WHERE id = 7")
}

// crashCase is one kill point.
type crashCase struct {
	name string
	op   string // what the child runs: start, complete or rollback
	rate float64
	slow bool // make VALIDATE CONSTRAINT slow
	// arm runs before the child starts (to close gates in its way).
	arm func(r *crashRun)
	// reach returns once the child is at the kill point; it may open and
	// close gates on the way, and checks the recorded progress there.
	reach func(r *crashRun)
	// rollback: after the kill, roll back instead of carrying on (for op
	// start or complete).
	rollback bool
	// completeAfter: after a killed rollback, complete instead (a killed
	// rollback changed nothing, so either way out is open).
	completeAfter bool
}

func crashCases() []crashCase {
	// waitLockedAt: the child waits for a gate's lock in statement prefix,
	// with steps recorded.
	waitLockedAt := func(prefix, phase string, steps int) func(r *crashRun) {
		return func(r *crashRun) {
			r.until(fmt.Sprintf("the engine waits for a lock in %q", prefix), func() bool { return r.waitsOnLockIn(prefix) })
			r.expect(phase, steps)
		}
	}
	// firstBatch: the first checkpoint of the accounts backfill is
	// committed; the child is in its rate-limit pause or its second batch.
	firstBatch := func(r *crashRun) {
		r.until("the first backfill batch committed", func() bool { n, _ := r.rowsDone(0); return n > 0 })
		r.expect(string(state.Backfilling), crashExpandSteps)
	}
	// inBatchAt: the batch that reaches row id of table waits for the row
	// lock an application transaction holds, its rows uncommitted. The
	// gate is taken once the backfill is under way (a row lock earlier
	// would stop expand's ALTER TABLE instead); a threshold cannot be
	// polled for instead, since a fast server's batches can step over it.
	inBatchAt := func(task int, table string, id int64) func(r *crashRun) {
		return func(r *crashRun) {
			firstBatch(r)
			r.rowGate(table, id)
			r.until(fmt.Sprintf("the backfill batch reaching %s row %d waits for its lock", table, id), func() bool { return r.waitsOnLockIn("UPDATE") })
			if n, done := r.rowsDone(task); done || n >= id {
				r.fatalf("backfill task %d: %d rows done (done: %v), want fewer than %d", task, n, done, id)
			}
			r.expect(string(state.Backfilling), crashExpandSteps)
		}
	}
	// duringBackfill closes a gate once the accounts backfill is under
	// way: past expand, before finish.
	duringBackfill := func(r *crashRun, open func()) {
		r.until("the backfill started", func() bool { n, _ := r.rowsDone(0); return n > 0 })
		open()
	}
	inCIC := func(r *crashRun) bool { return r.waitsOnLockIn("CREATE INDEX CONCURRENTLY") }
	validating := func(r *crashRun) bool { return r.runs(`VALIDATE CONSTRAINT "balance_nonneg"`) }

	return []crashCase{
		// expand
		{name: "expand/1-add-column-waits-for-lock", op: "start",
			arm:   func(r *crashRun) { r.lockGate("accounts") },
			reach: waitLockedAt(`ALTER TABLE "public"."accounts"`, string(state.Expanding), 0)},
		{name: "expand/2-in-create-index-concurrently", op: "start", rollback: true,
			arm: func(r *crashRun) { r.snapshotGate() },
			reach: func(r *crashRun) {
				r.until("the engine builds the index", func() bool { return inCIC(r) })
				r.expect(string(state.Expanding), 1)
			}},
		{name: "expand/3-after-the-index", op: "start",
			arm: func(r *crashRun) { r.snapshotGate() },
			reach: func(r *crashRun) {
				snap := r.gates[0]
				r.until("the engine builds the index", func() bool { return inCIC(r) })
				r.lockGate("accounts")
				snap.release()
				waitLockedAt(`ALTER TABLE "public"."accounts"`, string(state.Expanding), 2)(r)
			}},
		{name: "expand/4-orders-columns", op: "start", rollback: true,
			arm:   func(r *crashRun) { r.lockGate("orders") },
			reach: waitLockedAt(`ALTER TABLE "public"."orders"`, string(state.Expanding), 3)},
		// backfill
		{name: "backfill/after-first-batch", op: "start", rate: crashRate, reach: firstBatch},
		{name: "backfill/in-batch-at-accounts-25%", op: "start", rate: crashRate, rollback: true, reach: inBatchAt(0, "accounts", crashAccounts/4)},
		{name: "backfill/in-batch-at-accounts-50%", op: "start", rate: crashRate, reach: inBatchAt(0, "accounts", crashAccounts/2)},
		{name: "backfill/in-batch-at-accounts-90%", op: "start", rate: crashRate, rollback: true, reach: inBatchAt(0, "accounts", crashAccounts*9/10)},
		{name: "backfill/in-batch-at-orders-50%", op: "start", rate: crashRate, reach: inBatchAt(1, "orders", crashOrders/2)},
		// finish
		{name: "finish/5-add-check-waits-for-lock", op: "start", rate: crashRate, rollback: true,
			reach: func(r *crashRun) {
				duringBackfill(r, func() { r.lockGate("accounts") })
				waitLockedAt(`ALTER TABLE "public"."accounts"`, string(state.Finishing), crashExpandSteps)(r)
			}},
		{name: "finish/6-in-validate-constraint", op: "start", slow: true,
			reach: func(r *crashRun) {
				r.until("the engine validates balance_nonneg", func() bool { return validating(r) })
				r.expect(string(state.Finishing), 5)
			}},
		{name: "finish/6-in-validate-constraint-then-rollback", op: "start", slow: true, rollback: true,
			reach: func(r *crashRun) {
				r.until("the engine validates balance_nonneg", func() bool { return validating(r) })
				r.expect(string(state.Finishing), 5)
			}},
		{name: "finish/7-in-create-index-concurrently", op: "start", rate: crashRate, rollback: true,
			reach: func(r *crashRun) {
				duringBackfill(r, func() { r.snapshotGate() })
				r.until("the engine builds the index", func() bool { return inCIC(r) })
				r.expect(string(state.Finishing), 6)
			}},
		{name: "finish/12-orders-check-waits-for-lock", op: "start", rate: crashRate,
			reach: func(r *crashRun) {
				duringBackfill(r, func() { r.lockGate("orders") })
				waitLockedAt(`ALTER TABLE "public"."orders"`, string(state.Finishing), 11)(r)
			}},
		// contract: the child runs complete. Its one transaction is
		// killed while it waits for a table; nothing of it is committed, so
		// the migration is still active, and both complete and rollback
		// must work after the kill (the cases alternate).
		{name: "contract/1-rename", op: "complete",
			arm: func(r *crashRun) { r.lockGate("orders") },
			reach: func(r *crashRun) {
				waitLockedAt(`ALTER TABLE "public"."orders"`, string(state.Active), crashAllSteps)(r)
				r.expectContract(0)
			}},
		{name: "contract/2-swap-email", op: "complete", rollback: true,
			arm: func(r *crashRun) { r.lockGate("accounts") },
			reach: func(r *crashRun) {
				waitLockedAt("DROP TRIGGER", string(state.Active), crashAllSteps)(r)
				r.expectContract(0)
			}},
		{name: "contract/4-swap-orders", op: "complete",
			arm: func(r *crashRun) { r.lockGate("accounts") },
			reach: func(r *crashRun) {
				acc := r.gates[0]
				waitLockedAt("DROP TRIGGER", string(state.Active), crashAllSteps)(r)
				r.lockGate("orders")
				acc.release()
				// Past accounts (whose locks the transaction now holds),
				// waiting for orders.
				r.until("the contract waits for orders", func() bool {
					return r.waitsOnLockIn(`ALTER TABLE "public"."orders"`) || r.waitsOnLockIn(`DROP TRIGGER IF EXISTS "_online_`+"r")
				})
				r.expectContract(0)
			}},
		// rollback: the child runs rollback, one transaction as well.
		// The version schema goes view by view first (no CASCADE).
		{name: "rollback/drop-version-schema", op: "rollback",
			arm:   func(r *crashRun) { r.lockGate("public_crash.accounts") },
			reach: waitLockedAt(`DROP VIEW IF EXISTS "public_crash"."accounts"`, string(state.Active), crashAllSteps)},
		{name: "rollback/undo-accounts-finish", op: "rollback",
			arm:   func(r *crashRun) { r.lockGate("accounts") },
			reach: waitLockedAt(`ALTER TABLE "public"."accounts"`, string(state.Active), crashAllSteps)},
		{name: "rollback/undo-orders-columns", op: "rollback", completeAfter: true,
			arm: func(r *crashRun) { r.lockGate("accounts") },
			reach: func(r *crashRun) {
				acc := r.gates[0]
				waitLockedAt(`ALTER TABLE "public"."accounts"`, string(state.Active), crashAllSteps)(r)
				r.lockGate("orders")
				acc.release()
				r.until("the rollback waits for orders", func() bool {
					return r.waitsOnLockIn("DROP TRIGGER") || r.waitsOnLockIn(`ALTER TABLE "public"."orders"`)
				})
				r.expect(string(state.Active), crashAllSteps)
			}},
	}
}

// crashSeed is the seed of the random kill points: ONLINE_CRASH_SEED, or
// the clock.
func crashSeed(t testing.TB) uint64 {
	if s := os.Getenv(envCrashSeed); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", envCrashSeed, s, err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// crashDBs is how many databases the kill points are spread over; the
// kill points of one database run one after the other. Creating and
// dropping a database costs a checkpoint (a second or more here), more than
// a kill point itself.
const crashDBs = 4

func TestCrashKillPoints(t *testing.T) {
	if os.Getenv(envChildURL) != "" {
		return
	}
	t.Parallel()
	seed := crashSeed(t)
	t.Logf("crash seed %d (replay: %s=%d go test ./phases/ -run TestCrashKillPoints)", seed, envCrashSeed, seed)
	cases := crashCases()
	rng := rand.New(rand.NewPCG(seed, 0x6f6e6c))
	// Random kills of start, counted from the moment the child's session
	// appears: anywhere from its first statement to the end of the
	// stretched backfill (a start takes ~1.5 s in all; a kill that comes
	// after it finished is logged as such, and recovery is checked all
	// the same).
	for i := range 8 {
		delay := time.Duration(rng.IntN(1400)) * time.Millisecond
		cases = append(cases, crashCase{
			name: fmt.Sprintf("random/%d-after-%s", i+1, delay), op: "start", rate: crashRate, rollback: i%2 == 1,
			reach: func(r *crashRun) {
				r.until("the child connected", func() bool { _, _, q := r.engineBackend(); return q != "" })
				select {
				case <-time.After(delay):
				case <-r.child.exited:
				}
			},
		})
	}
	for g := range crashDBs {
		t.Run(fmt.Sprintf("db%d", g+1), func(t *testing.T) {
			t.Parallel()
			url := pgtest.NewDB(t)
			for i := g; i < len(cases); i += crashDBs {
				tc := cases[i]
				t.Run(tc.name, func(t *testing.T) { runCrash(t, url, tc, seed) })
			}
		})
	}
}

// crashReset drops whatever an earlier kill point left in the database
// (even one that failed halfway) and builds the tables anew.
func crashReset(t *testing.T, url string) *env {
	e := envOn(t, url, pgtest.Connect(t, url))
	pgtest.Exec(t, e.db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
	alterDatabase(e, "RESET ALL")
	pgtest.Exec(t, e.db,
		"DROP SCHEMA IF EXISTS online, public_crash CASCADE",
		"DROP TABLE IF EXISTS accounts, orders, crash_gate CASCADE",
		"DROP FUNCTION IF EXISTS crash_nonneg(bigint)")
	pgtest.Exec(t, e.db, crashSetup...)
	return e
}

// alterDatabase changes a setting of the test's database, for the sessions
// that connect after.
func alterDatabase(e *env, clause string) {
	e.t.Helper()
	e.exec(e.db, "ALTER DATABASE "+pg.Ident(e.rows(e.db, "SELECT current_database()")[0])+" "+clause)
}

// runCrash runs one kill point: fresh tables, the child driven to the point
// and killed, its session gone, then the recovery the case asks for and the
// check of every row and of the catalog.
func runCrash(t *testing.T, url string, tc crashCase, seed uint64) {
	e := crashReset(t, url)
	r := &crashRun{t: t, e: e, seed: seed}
	var before crashBaseline
	if tc.op == "rollback" || tc.rollback {
		before = takeCrashBaseline(e)
	}

	if tc.op != "start" {
		if _, err := crashStart(t, e.url); err != nil {
			t.Fatalf("start: %s", pg.Explain(err))
		}
	}
	if tc.slow {
		alterDatabase(e, "SET crash.slow = 'on'")
	}
	if tc.arm != nil {
		tc.arm(r)
	}
	r.child = startCrashProc(t, e.url, tc.op, tc.rate)
	tc.reach(r)
	wasRunning := r.child.running()
	r.child.kill()
	if !wasRunning && r.child.exitCode() != 0 {
		r.fatalf("the child failed before the kill point")
	}
	at := r.state()
	accRows, _ := r.rowsDone(0)
	ordRows, _ := r.rowsDone(1)
	t.Logf("killed %s (child still running: %v): %s; rows backfilled: accounts %d, orders %d", tc.op, wasRunning, at, accRows, ordRows)
	// The killed child's session must end while the gates still hold it
	// up: a resume must not wait for the statement it was killed in.
	r.waitForOrphans()
	r.releaseGates()
	if tc.slow {
		alterDatabase(e, "RESET crash.slow")
	}

	switch {
	case tc.op == "complete" || tc.op == "rollback":
		// One transaction, killed: the migration is as start left it,
		// published, and can be left either way.
		if at.phase != string(state.Active) || at.contract != 0 {
			r.fatalf("after a killed %s: %s, want the migration still active", tc.op, at)
		}
		if res, err := crashStart(t, e.url); err != nil || res.Phase != string(state.Active) {
			r.fatalf("start after a killed %s: %v, want it to find the migration active", tc.op, err)
		}
		if (tc.rollback || tc.op == "rollback") && !tc.completeAfter {
			if _, err := crashRollback(t, e.url); err != nil {
				r.fatalf("rollback after a killed %s: %s", tc.op, pg.Explain(err))
			}
			checkRolledBack(e, before, tc.name)
		} else {
			if _, err := crashComplete(t, e.url); err != nil {
				r.fatalf("complete after a killed %s: %s", tc.op, pg.Explain(err))
			}
			checkMigrated(e, 0, tc.name)
		}
	case tc.rollback:
		_, err := crashRollback(t, e.url)
		switch {
		case at.exists && err != nil:
			r.fatalf("rollback after the kill: %s", pg.Explain(err))
		case !at.exists && !errors.Is(err, phases.ErrNoMigration):
			r.fatalf("rollback with nothing recorded: %v, want ErrNoMigration", err)
		}
		checkRolledBack(e, before, tc.name)
	default:
		if at.exists && at.phase != string(state.Active) {
			// The migration is half done: complete must refuse.
			if _, err := crashComplete(t, e.url); !errors.Is(err, phases.ErrBackfillUnfinished) {
				r.fatalf("complete after the kill (%s): %v, want ErrBackfillUnfinished", at, err)
			}
		}
		extra := crashWrites(e)
		res, err := crashStart(t, e.url)
		if err != nil {
			r.fatalf("start after the kill: %s", pg.Explain(err))
		}
		if res.Resumed != at.exists {
			r.fatalf("start after the kill (%s): resumed = %v", at, res.Resumed)
		}
		if _, err := crashComplete(t, e.url); err != nil {
			r.fatalf("complete: %s", pg.Explain(err))
		}
		checkMigrated(e, extra, tc.name)
	}
}

// TestCrashStatementTimeout: the database's statement_timeout (shorter, for
// once, than online's lock_timeout) cancels a backfill batch that waits for
// an application's row lock. The migration must stop with a message that
// names the cause and how to go on, keeping its backfill progress; once the
// timeout is raised, start resumes it.
func TestCrashStatementTimeout(t *testing.T) {
	t.Parallel()
	e := crashReset(t, pgtest.NewDB(t))
	r := &crashRun{t: t, e: e}
	alterDatabase(e, "SET statement_timeout = '1s'")
	// The batch waits for the row as long as the DDL would: longer than
	// the statement_timeout (by default it gives up after 100ms).
	eng, err := phases.Open(ctx(), phases.Config{URL: e.url, LockTimeout: 5 * time.Second, BackfillLockTimeout: 5 * time.Second,
		BackfillRate: crashRate, BackfillBatchTime: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx())
	done := make(chan error, 1)
	go func() {
		_, err := eng.Start(ctx(), parse(t, "crash", crashMigration))
		done <- err
	}()
	r.until("the backfill started", func() bool { n, _ := r.rowsDone(0); return n > 0 })
	// An application transaction holds a row near the end of the walk.
	g := r.rowGate("accounts", crashAccounts-10)
	err = <-done
	g.release()
	t.Logf("start under statement_timeout: %s", pg.Explain(err))
	var intr *phases.InterruptedError
	if !errors.As(err, &intr) {
		t.Fatalf("start: %v, want an InterruptedError", err)
	}
	for _, want := range []string{"statement timeout", "online start", "online rollback"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("the error does not say %q: %v", want, err)
		}
	}
	rows, done2 := r.rowsDone(0)
	if s := r.state(); s.phase != string(state.Backfilling) || rows == 0 || done2 {
		t.Fatalf("after the timeout: %s, %d rows backfilled; want the backfill's progress kept", s, rows)
	}
	alterDatabase(e, "RESET statement_timeout")
	res, err := crashStart(t, e.url)
	if err != nil || !res.Resumed {
		t.Fatalf("start again: %v (resumed: %v)", err, res != nil && res.Resumed)
	}
	if _, err := crashComplete(t, e.url); err != nil {
		t.Fatal(err)
	}
	checkMigrated(e, 0, "after the statement timeout")
}

// background runs an engine command of the test process in a goroutine,
// for the tests that act on its session while it runs.
type crashBG struct {
	done chan struct{}
	err  error
}

func (r *crashRun) inBackground(fn func(*phases.Engine) error) *crashBG {
	b := &crashBG{done: make(chan struct{})}
	eng, err := phases.Open(ctx(), phases.Config{URL: r.e.url, LockTimeout: 200 * time.Millisecond, LockRetryDeadline: time.Minute,
		BackfillRate: crashRate, BackfillBatchTime: 20 * time.Millisecond})
	if err != nil {
		r.fatalf("open engine: %v", err)
	}
	go func() {
		defer close(b.done)
		defer eng.Close(context.Background())
		b.err = fn(eng)
	}()
	r.bg = b
	r.t.Cleanup(func() { <-b.done })
	return b
}

// terminateEngine ends the engine's session from the server side, the way
// a DBA (or a failover) would: found by its application_name.
func (r *crashRun) terminateEngine() {
	r.t.Helper()
	var n int
	if err := r.e.db.QueryRow(ctx(), `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'online'`).Scan(&n); err != nil || n != 1 {
		r.fatalf("pg_terminate_backend of the engine's session: %d terminated, %v", n, err)
	}
}

// TestCrashTerminatedSession terminates the engine's session with
// pg_terminate_backend in a backfill batch, in a concurrent index build and
// in a contract step. The command must say how to go on, and going on must
// work.
func TestCrashTerminatedSession(t *testing.T) {
	if os.Getenv(envChildURL) != "" {
		return
	}
	t.Parallel()
	url := pgtest.NewDB(t)
	t.Run("mid-batch", func(t *testing.T) {
		e := crashReset(t, url)
		r := &crashRun{t: t, e: e}
		b := r.inBackground(func(eng *phases.Engine) error {
			_, err := eng.Start(ctx(), parse(t, "crash", crashMigration))
			return err
		})
		r.until("the backfill started", func() bool { n, _ := r.rowsDone(0); return n > 0 })
		g := r.rowGate("accounts", crashAccounts/2)
		r.until("a backfill batch waits for a row", func() bool { return r.waitsOnLockIn("UPDATE") })
		r.terminateEngine()
		<-b.done
		g.release()
		t.Logf("start: %v", b.err)
		var intr *phases.InterruptedError
		if !errors.As(b.err, &intr) || !strings.Contains(b.err.Error(), "run `online start` with the same file") {
			t.Fatalf("start after its session was terminated: %v, want an InterruptedError that says how to resume", b.err)
		}
		rows, _ := r.rowsDone(0)
		if s := r.state(); s.phase != string(state.Backfilling) || rows == 0 {
			t.Fatalf("after the termination: %s, %d rows backfilled", s, rows)
		}
		r.waitForOrphans()
		extra := crashWrites(e)
		res, err := crashStart(t, url)
		if err != nil || !res.Resumed {
			t.Fatalf("start again: %v (resumed: %v)", err, res != nil && res.Resumed)
		}
		if _, err := crashComplete(t, url); err != nil {
			t.Fatal(err)
		}
		checkMigrated(e, extra, t.Name())
	})
	t.Run("in-index-build", func(t *testing.T) {
		e := crashReset(t, url)
		r := &crashRun{t: t, e: e}
		before := takeCrashBaseline(e)
		snap := r.snapshotGate()
		b := r.inBackground(func(eng *phases.Engine) error {
			_, err := eng.Start(ctx(), parse(t, "crash", crashMigration))
			return err
		})
		r.until("the engine builds the index", func() bool { return r.waitsOnLockIn("CREATE INDEX CONCURRENTLY") })
		r.terminateEngine()
		<-b.done
		snap.release()
		var intr *phases.InterruptedError
		if !errors.As(b.err, &intr) || !strings.Contains(b.err.Error(), "`online rollback`") {
			t.Fatalf("start after its session was terminated: %v, want an InterruptedError that says how to roll back", b.err)
		}
		r.waitForOrphans()
		if _, err := crashRollback(t, url); err != nil {
			t.Fatal(err)
		}
		checkRolledBack(e, before, t.Name())
	})
	t.Run("in-complete", func(t *testing.T) {
		e := crashReset(t, url)
		r := &crashRun{t: t, e: e}
		if _, err := crashStart(t, url); err != nil {
			t.Fatal(err)
		}
		g := r.lockGate("accounts")
		b := r.inBackground(func(eng *phases.Engine) error {
			_, err := eng.Complete(ctx())
			return err
		})
		r.until("the contract waits for accounts", func() bool { return r.waitsOnLockIn("DROP TRIGGER") })
		r.terminateEngine()
		<-b.done
		g.release()
		if b.err == nil || !strings.Contains(b.err.Error(), "nothing was changed") {
			t.Fatalf("complete after its session was terminated: %v, want an error that says nothing was changed", b.err)
		}
		if s := r.state(); s.phase != string(state.Active) || s.contract != 0 {
			t.Fatalf("after the termination: %s", s)
		}
		r.waitForOrphans()
		if _, err := crashComplete(t, url); err != nil {
			t.Fatal(err)
		}
		checkMigrated(e, 0, t.Name())
	})
}

// TestCrashRacingProcesses starts two online processes at once. The one
// that takes the schema's lock first is held at its first step by a gate,
// so the other comes while it works, whatever the timing of their start:
// it must give up at once with a clear error (exit code 3, as the CLI), and
// the winner must finish.
func TestCrashRacingProcesses(t *testing.T) {
	if os.Getenv(envChildURL) != "" {
		return
	}
	t.Parallel()
	e := crashReset(t, pgtest.NewDB(t))
	r := &crashRun{t: t, e: e}
	g := r.lockGate("accounts")
	a, b := startCrashProc(t, e.url, "start", 0), startCrashProc(t, e.url, "start", 0)
	var winner, loser *crashProc
	select {
	case <-a.exited:
		loser, winner = a, b
	case <-b.exited:
		loser, winner = b, a
	case <-time.After(time.Minute):
		t.Fatal("neither process gave up")
	}
	t.Logf("the loser: exit code %d: %s", loser.exitCode(), strings.TrimSpace(loser.out.String()))
	if loser.exitCode() != 3 || !strings.Contains(loser.out.String(), "another online process is working on this schema") {
		t.Fatalf("the second process: exit code %d, output %q; want 3 and \"another online process\"", loser.exitCode(), loser.out.String())
	}
	r.child = winner
	r.until("the winner waits at its first step", func() bool { return r.waitsOnLockIn("ALTER TABLE") })
	g.release()
	if code := winner.exitCode(); code != 0 {
		t.Fatalf("the winner: exit code %d: %s", code, winner.out.String())
	}
	if _, err := crashComplete(t, e.url); err != nil {
		t.Fatal(err)
	}
	checkMigrated(e, 0, t.Name())
}

// TestInitLeavesACurrentStateSchemaAlone: a state schema already in the
// current layout is not altered again. Before, every command's Init ran
// ALTER TABLE ... ADD COLUMN IF NOT EXISTS on the state tables, which waits
// for their lock even when it changes nothing: a second process arriving
// while the first one had a state table open timed out there ("init state
// schema: lock timeout") instead of being told another process is at work.
func TestInitLeavesACurrentStateSchemaAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable, usersRows)
	if err := e.engine().Init(ctx()); err != nil {
		t.Fatalf("the first init: %v", err)
	}
	holder := pgtest.Connect(t, e.url)
	pgtest.Exec(t, holder, "BEGIN", "SELECT count(*) FROM online.migrations", "SELECT count(*) FROM online.backfills")
	t.Cleanup(func() { _, _ = holder.Exec(ctx(), "ROLLBACK") })
	eng := e.engine(func(c *phases.Config) { c.LockTimeout = 200 * time.Millisecond })
	if err := eng.Init(ctx()); err != nil {
		t.Fatalf("init of a current state schema while another session reads it: %v", err)
	}
	// An older layout (the comment gone, as on a state schema an earlier
	// release made) is brought up to date once the holder is gone.
	pgtest.Exec(t, holder, "ROLLBACK")
	e.exec(e.db, "COMMENT ON SCHEMA online IS NULL")
	e.exec(e.db, "ALTER TABLE online.backfills DROP COLUMN duty")
	if err := eng.Init(ctx()); err != nil {
		t.Fatalf("init of an older state schema: %v", err)
	}
	e.expectRows(e.db, []string{"1"}, "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'online' AND table_name = 'backfills' AND column_name = 'duty'")
}

// TestMoveKilledMidBackfill: start of each move of data between tables is
// killed (SIGKILL, in a child process) in the middle of its backfill; then
// the migration is either carried on and completed, with every row read the
// same through both versions, or rolled back, leaving the schema and every
// row of the tables as they were.
func TestMoveKilledMidBackfill(t *testing.T) {
	if os.Getenv("ONLINE_TEST_CHILD_URL") != "" {
		return // in the child, TestChildStart does the work
	}
	t.Parallel()
	const rows = 20000
	bulk := map[string]string{
		"move_email_to_accounts":   fmt.Sprintf("INSERT INTO users (email) SELECT 'bulk' || g || '@x' FROM generate_series(1, %d) g", rows),
		"split_orders_addresses":   fmt.Sprintf("INSERT INTO orders (user_id, street, city) SELECT g %% 50 + 1, g || ' Bulk St', 'Bulk' FROM generate_series(1, %d) g", rows),
		"fold_profiles_into_users": fmt.Sprintf("INSERT INTO users (email) SELECT 'bulk' || g || '@x' FROM generate_series(1, %d) g", rows),
		"move_tier_to_users":       fmt.Sprintf("INSERT INTO users (email) SELECT 'bulk' || g || '@x' FROM generate_series(1, %d) g", rows),
	}
	tables := map[string][]string{
		"move_email_to_accounts":   {"users"},
		"split_orders_addresses":   {"orders"},
		"fold_profiles_into_users": {"users", "profiles"},
		"move_tier_to_users":       {"users", "orders"},
	}
	for _, m := range lifecycletest.Moves() {
		for _, out := range []string{"resume", "rollback"} {
			t.Run(m.Name+"/"+out, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, append(append([]string{usersTable, usersRows}, m.Setup...), bulk[m.Name])...)
				dump := e.dump()
				var data []string
				for _, tbl := range tables[m.Name] {
					data = append(data, e.tableDigest(tbl))
				}
				e.killChildStartAt(rows/5, "ONLINE_TEST_CHILD_MOVE="+m.Name)
				if n := e.backfillDone(); n >= rows {
					t.Fatalf("the backfill finished (%d rows) before the kill", n)
				}
				if out == "rollback" {
					e.rollback()
					if got := e.dump(); got != dump {
						t.Fatalf("rollback after the kill changed the schema:\n--- before\n%s\n--- after\n%s", dump, got)
					}
					for i, tbl := range tables[m.Name] {
						if e.tableDigest(tbl) != data[i] {
							t.Fatalf("rollback after the kill changed the rows of %s", tbl)
						}
					}
					return
				}
				res := e.start(m.Name, m.YAML)
				if !res.Resumed {
					t.Fatal("start after the kill did not resume")
				}
				old, nw := e.version("public"), e.version(res.VersionSchema)
				e.Same(m, old, nw)
				before := e.rows(old, m.Old)
				e.complete()
				nw = e.version(res.VersionSchema)
				if after := e.rows(nw, m.New); strings.Join(after, "\n") != strings.Join(before, "\n") {
					t.Fatalf("after complete the new version reads %d rows unlike the %d both versions showed", len(after), len(before))
				}
			})
		}
	}
}
