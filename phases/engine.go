package phases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/onlinepg/online/backfill"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/schema"
	"github.com/onlinepg/online/state"
)

// Config says where and how migrations run.
type Config struct {
	// URL is the connection string; "" uses the libpq PG* variables.
	URL         string
	Schema      string // default "public"
	StateSchema string // default "online"
	// LockTimeout bounds every lock wait of expand and contract statements
	// (default 500ms); a statement that times out is retried.
	LockTimeout time.Duration
	// LockRetryDeadline bounds the retries of one statement, and of one
	// backfill batch (default 2m).
	LockRetryDeadline time.Duration
	// BackfillBatchTime is the target duration of one backfill batch.
	BackfillBatchTime time.Duration
	// BackfillLockTimeout bounds a backfill batch's wait for a row lock
	// (the rows it updated before stay locked meanwhile); zero means
	// backfill.DefaultLockTimeout (100ms). A batch that times out is
	// retried, smaller, within LockRetryDeadline.
	BackfillLockTimeout time.Duration
	// BackfillRate caps backfill rows per second, all workers together; 0
	// is unlimited.
	BackfillRate float64
	// BackfillWorkers is how many connections walk a table's key ranges at
	// once; 0 chooses min(4, this client's CPUs, rows/250,000), at least 1.
	// A resumed backfill keeps the ranges it was split into.
	BackfillWorkers int
	// BackfillYield slows the backfill while the application (the
	// database's other sessions) works, so that it keeps at least this
	// fraction of the transaction rate it had with the backfill held back
	// (see yield.go). Zero means DefaultBackfillYield, as in the CLI; Off
	// (any negative value) turns it off.
	BackfillYield float64
	// MaxReplicaLag pauses the backfill between batches while a streaming
	// standby's replay lag exceeds it. Zero means DefaultMaxReplicaLag, as
	// in the CLI; Off (any negative value) turns the check off.
	MaxReplicaLag time.Duration
	Log           zerolog.Logger
	// OnProgress, if set, receives backfill progress after every batch.
	OnProgress func(backfill.Progress)
	// LockWait is how long a command waits for the schema's lock while
	// another session holds it (default 5s; negative: not at all). A
	// process killed a moment ago leaves its session holding the lock until
	// the server notices; a live holder still turns the command away after
	// the wait (state.ErrBusy).
	LockWait time.Duration
	// ForceRollback lets a rollback go on past data migrations
	// (update_rows) without down that have changed rows: the values they
	// set are kept, the rest is rolled back. Without it such a rollback
	// is refused with ErrIrreversible and nothing is changed.
	ForceRollback bool
	// DropDependents lets complete and rollback drop the objects online
	// did not create that live in the version schema they drop, or depend
	// on its views (ForeignObject), naming each. Without it they refuse
	// with *DependentsError before any change.
	DropDependents bool

	// FailAt is a test knob; nil in production. When set, it is called
	// before each statement of complete ("complete"), rollback
	// ("rollback") and of what runs after their commit ("after"), with the
	// statement's index; i == len(statements) and stmt "record" for the
	// state update that ends the transaction. An error it returns is that
	// statement's error. Tests use it to prove that a command failing at
	// any statement changes nothing (internal/lifecycletest).
	FailAt func(what string, i int, stmt string) error
}

// ErrPooler is returned by Open when a connection pooler in transaction or
// statement mode stands between online and PostgreSQL: online needs a
// session of its own (its advisory lock, lock_timeout) that such a pooler
// does not keep.
var ErrPooler = errors.New("a connection pooler (such as pgbouncer in transaction mode) is between online and PostgreSQL; online needs a session of its own: connect to PostgreSQL directly (the server's own host and port, usually 5432), and keep the pooler for applications")

// ErrNoMigration is returned by Complete and Rollback when no migration is
// in progress.
var ErrNoMigration = errors.New("no migration is in progress")

// ErrBackfillUnfinished is returned by Complete while a backfill has rows
// left: completing would drop source columns whose values are not all copied.
var ErrBackfillUnfinished = errors.New("the backfill is not finished")

// InProgressError is returned by Start when another migration is in progress.
type InProgressError struct{ Name string }

func (e *InProgressError) Error() string {
	return fmt.Sprintf("migration %q is in progress: complete it (online complete) or roll it back (online rollback) first", e.Name)
}

// Engine runs migrations over one dedicated connection.
type Engine struct {
	cfg   Config
	conn  *pgx.Conn
	store state.Store
	log   zerolog.Logger
	retry pg.Retry
	// pendingRan counts the statements queued after an earlier commit
	// that this command's start ran (see runPending).
	pendingRan int
	// meta, when set, is recorded with the next migration Start inserts
	// (see withMeta): the files of a migrations directory.
	meta *state.Meta
	// undoChanged says what this command's undo of data migrations
	// changed before the rollback's transaction (see undoDataMigrations),
	// so that a failure after it does not claim that nothing changed.
	undoChanged []string
	// forceLeft lists the undo statements a rollback --force skipped.
	forceLeft []string
	// queued lists the statements a rollback left queued after its
	// commit (see ErrPendingLeft).
	queued []string
	// workersUsed is the most backfill workers one table had at once in
	// this command's backfill, for Result.BackfillWorkers.
	workersUsed int
	// txns counts the transactions the engine's sessions end, for the
	// backfill's governor.
	txns *txCounter
	// watch reads who blocks a statement that waits for a lock.
	watch *pg.BlockerWatch
}

// tracer is the pgx tracer of the engine's sessions, nil without one.
func (e *Engine) tracer() pgx.QueryTracer {
	if e.txns == nil {
		return nil
	}
	return e.txns
}

// Open connects. The connection carries lock_timeout from its startup
// packet, so every statement of the engine is bounded.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Schema == "" {
		cfg.Schema = "public"
	}
	if cfg.StateSchema == "" {
		cfg.StateSchema = "online"
	}
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = DefaultLockTimeout
	}
	if cfg.LockRetryDeadline <= 0 {
		cfg.LockRetryDeadline = DefaultLockRetryDeadline
	}
	if cfg.LockWait == 0 {
		cfg.LockWait = DefaultLockWait
	}
	// A zero value is the safe default, as the CLI's: a Go program that
	// leaves these out gets a backfill that yields and waits for the
	// replicas. Off is said explicitly.
	if cfg.BackfillYield == 0 {
		cfg.BackfillYield = DefaultBackfillYield
	}
	if cfg.MaxReplicaLag == 0 {
		cfg.MaxReplicaLag = DefaultMaxReplicaLag
	}
	if cfg.Schema == cfg.StateSchema {
		return nil, fmt.Errorf("the state schema cannot be the migrated schema %q", cfg.Schema)
	}
	// The governor of a backfill leaves out the transactions of the
	// engine's sessions: they count them as they go.
	txns := &txCounter{}
	conn, err := pg.Connect(ctx, cfg.URL, pg.Options{LockTimeout: cfg.LockTimeout, ApplicationName: "online", KeepAlive: true, Tracer: txns})
	if err != nil {
		// pgbouncer refuses startup parameters it does not know, such as
		// lock_timeout: the first sign of a pooler in between.
		if strings.Contains(err.Error(), "unsupported startup parameter") {
			return nil, fmt.Errorf("%w: %w", ErrPooler, err)
		}
		return nil, err
	}
	if err := checkSession(ctx, conn, cfg.LockTimeout); err != nil {
		_ = conn.Close(ctx)
		return nil, err
	}
	// A process that dies in a statement (SIGKILL, a lost host) leaves its
	// session running that statement, and holding the schema's advisory
	// lock, until the statement ends: a concurrent index build waiting for
	// old transactions can go on for hours, while `online start` to resume
	// is told that another process is at work. From PostgreSQL 14 the
	// server can look for a vanished client while a statement runs. Set
	// here and not in the startup packet, which older servers would refuse.
	if _, err := conn.Exec(ctx, "SELECT set_config('client_connection_check_interval', '1s', false) WHERE current_setting('server_version_num')::int >= 140000"); err != nil {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("set client_connection_check_interval: %w", err)
	}
	e := &Engine{cfg: cfg, conn: conn, store: state.Store{Schema: cfg.StateSchema}, log: cfg.Log, txns: txns}
	e.retry = pg.Retry{
		Deadline: cfg.LockRetryDeadline,
		OnRetry: func(attempt int, wait time.Duration, err error) {
			e.log.Warn().Str(keyEvent, evLockRetry).Int(keyAttempt, attempt).Dur(keyWait, wait).Msg("lock not available in time; retrying")
		},
	}
	// Who a waiting statement waits for is read while it waits, from a
	// session of its own: once lock_timeout ends the wait, the server no
	// longer says. It is logged as seen, and named in the error when the
	// retries give up.
	e.watch = &pg.BlockerWatch{
		Open: func(ctx context.Context) (*pgx.Conn, error) {
			return pg.Connect(ctx, cfg.URL, pg.Options{ApplicationName: "online watch", Tracer: e.tracer()})
		},
		After: max(cfg.LockTimeout/2, 50*time.Millisecond),
		OnSeen: func(_ uint32, bs []pg.Blocker) {
			e.log.Warn().Str(keyEvent, evBlocked).Interface(keyBlockers, bs).Msg("waiting for a lock: " + pg.BlockersText(bs))
		},
	}
	e.retry.Watch = func(ctx context.Context) func() []pg.Blocker {
		return e.watch.Watch(ctx, e.conn.PgConn().PID())
	}
	return e, nil
}

// checkSession makes sure the connection is a session of its own on the
// server: the settings of its startup packet are in force, and the backend
// stays the same from one statement to the next. A pooler in transaction
// mode that drops startup parameters (pgbouncer's
// ignore_startup_parameters) fails the first test; one that passes them on
// but lends another server connection per statement fails the second when
// its pool has more than one connection to lend. Both cost one round trip
// each, once per command.
func checkSession(ctx context.Context, conn *pgx.Conn, lockTimeout time.Duration) error {
	var setting string
	var pid1, pid2 int32
	if err := conn.QueryRow(ctx, "SELECT setting, pg_backend_pid() FROM pg_settings WHERE name = 'lock_timeout'").Scan(&setting, &pid1); err != nil {
		return fmt.Errorf("check the session: %w", err)
	}
	if want := strconv.FormatInt(lockTimeout.Milliseconds(), 10); setting != want {
		return fmt.Errorf("%w (the server runs the connection with lock_timeout %sms, not the %sms online asked for in its startup packet)", ErrPooler, setting, want)
	}
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid2); err != nil {
		return fmt.Errorf("check the session: %w", err)
	}
	if pid1 != pid2 || pid1 != int32(conn.PgConn().PID()) {
		return fmt.Errorf("%w (two statements ran on server sessions %d and %d)", ErrPooler, pid1, pid2)
	}
	return nil
}

// Close closes the connection (and with it the advisory lock, if held).
func (e *Engine) Close(ctx context.Context) error {
	e.watch.Close(ctx)
	return e.conn.Close(ctx)
}

// Conn is the engine's connection, for callers that read along (tests, demo).
func (e *Engine) Conn() *pgx.Conn { return e.conn }

// Init creates the state schema when missing.
func (e *Engine) Init(ctx context.Context) error { return e.store.Init(ctx, e.conn) }

// locked runs fn holding the schema's advisory lock, after init. The
// unlock runs even after a cancel, on a context of its own.
func (e *Engine) locked(ctx context.Context, fn func() error) (err error) {
	if err := e.Init(ctx); err != nil {
		return err
	}
	waited := false
	began := time.Now()
	unlock, err := e.store.LockWait(ctx, e.conn, e.cfg.Schema, max(e.cfg.LockWait, 0), func(holder string) {
		waited = true
		e.log.Info().Str(keyEvent, evLockWait).Str(keyHolder, holder).Dur(keyWait, e.cfg.LockWait).
			Msg("another session holds this schema's lock; waiting in case it belongs to a process that just died")
	})
	if err != nil {
		return err
	}
	if waited {
		e.log.Info().Str(keyEvent, evLockTaken).Dur(keyWait, time.Since(began)).Msg("the previous holder's session ended; lock taken")
	}
	// Finish what a complete or rollback queued after its commit and did
	// not get to run (a crash, a failure): idempotent drops of indexes
	// nobody uses any more. A failure here is reported, not fatal: the
	// next command tries again.
	e.pendingRan = 0
	if n, perr := e.runPending(ctx); perr != nil {
		e.log.Warn().Err(perr).Msg("a statement queued after an earlier complete or rollback failed; the next command runs it again")
	} else {
		e.pendingRan = n
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if !e.conn.IsClosed() {
			if uerr := unlock(cctx); uerr != nil && err == nil {
				err = fmt.Errorf("release the migration lock: %w", uerr)
			}
		}
	}()
	return fn()
}

// command runs fn under the schema's lock and times its result.
func (e *Engine) command(ctx context.Context, fn func() (*Result, error)) (*Result, error) {
	began := time.Now()
	var res *Result
	err := e.locked(ctx, func() (err error) {
		// Read first: a rollback deletes the record history reads.
		before, _ := e.store.InProgress(ctx, e.conn, e.cfg.Schema)
		res, err = fn()
		if err == nil && res != nil && res.Phase == string(state.Complete) {
			// The schema as the migration left it, what drift is
			// measured against (package workflow, drift.go).
			e.recordAfter(ctx, res.Migration)
		}
		if err == nil && res != nil && res.Phase == phaseRolledBack && before != nil && before.Name == res.Migration {
			e.recordRollback(ctx, before)
		}
		return err
	})
	if res != nil {
		res.Elapsed = time.Since(began)
	}
	return res, err
}

// current returns the migration in progress, or ErrNoMigration.
func (e *Engine) current(ctx context.Context) (*state.Record, error) {
	rec, err := e.store.InProgress(ctx, e.conn, e.cfg.Schema)
	if err == nil && rec == nil {
		err = ErrNoMigration
	}
	return rec, err
}

// resumeHint names the command that carries on a migration left in p.
func resumeHint(rec *state.Record) error {
	cmd := map[state.Phase]string{state.Completing: "complete", state.RollingBack: "rollback"}[rec.Phase]
	return fmt.Errorf("migration %q is %s; run online %s", rec.Name, rec.Phase, cmd)
}

// parent returns the version schema of the latest completed migration,
// when it still exists: the schema the old version reads through.
func (e *Engine) parent(ctx context.Context) (string, error) {
	rec, err := e.store.LatestVersioned(ctx, e.conn, e.cfg.Schema)
	if err != nil || rec == nil {
		return "", err
	}
	ok, err := e.schemaExists(ctx, rec.VersionSchema)
	if err != nil || !ok {
		return "", err
	}
	return rec.VersionSchema, nil
}

func (e *Engine) schemaExists(ctx context.Context, name string) (bool, error) {
	var ok bool
	err := e.conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", name).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up schema %s: %w", name, err)
	}
	return ok, nil
}

// Plan compiles m against the live catalog without changing anything.
func (e *Engine) Plan(ctx context.Context, m *operations.Migration) (*operations.Plan, error) {
	cur, err := schema.Read(ctx, e.conn, e.cfg.Schema)
	if err != nil {
		return nil, err
	}
	parent, err := e.parent(ctx)
	if err != nil {
		return nil, err
	}
	if rec, err := e.store.InProgress(ctx, e.conn, e.cfg.Schema); err != nil {
		return nil, err
	} else if rec != nil && rec.Name != m.Name {
		return nil, &InProgressError{Name: rec.Name}
	}
	plan, _, err := operations.Compile(m, cur, e.compileOptions(ctx, parent))
	return plan, err
}

// Result says what a command did.
type Result struct {
	Migration     string `json:"migration"`
	VersionSchema string `json:"version_schema"`
	Phase         string `json:"phase"`
	// Resumed is true when Start carried on a migration a previous process left.
	Resumed bool          `json:"resumed,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Backfill is the time this command spent rewriting rows.
	Backfill time.Duration `json:"backfill_ns,omitempty"`
	// BackfillWorkers is the most backfill workers this command ran at
	// once (the --backfill-workers given, or the engine's choice).
	BackfillWorkers int `json:"backfill_workers,omitempty"`
	// LeftInPlace lists, after a rollback, what it could not undo (the SQL
	// of a sql operation without down).
	LeftInPlace []string `json:"left_in_place,omitempty"`
	// DroppedDependents lists the objects online did not create that the
	// command dropped with a version schema, as --drop-dependents asked.
	DroppedDependents []ForeignObject `json:"dropped_dependents,omitempty"`
	// Queued lists the statements that run after the commit (DROP INDEX
	// CONCURRENTLY) that waited past --lock-retry-deadline for
	// transactions using their table: they stay queued, and the next
	// online command runs them.
	Queued []string `json:"queued,omitempty"`
}

func decodePlan(rec *state.Record) (*operations.Plan, error) {
	var p operations.Plan
	if err := json.Unmarshal(rec.Plan, &p); err != nil {
		return nil, fmt.Errorf("read the stored plan of migration %s: %w", rec.Name, err)
	}
	return &p, nil
}
