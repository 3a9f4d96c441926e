// Package state keeps online's own records in a schema of the database (the
// state schema, "online" by default): every migration with its document,
// compiled plan, phase and progress, and the backfill checkpoints. Keeping
// them in the database, written in the same transactions as the work they
// describe, is what lets any process resume or roll back after a crash.
package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/onlinepg/online/internal/pg"
)

// Phase is where a migration stands.
type Phase string

// The phases of a migration, in order. A rolled-back migration leaves no row.
const (
	Expanding   Phase = "expanding"   // expand steps running
	Backfilling Phase = "backfilling" // rows being rewritten
	Finishing   Phase = "finishing"   // constraints and indexes on rewritten columns
	Active      Phase = "active"      // both versions published; waiting for complete
	Completing  Phase = "completing"  // contract steps running
	Complete    Phase = "complete"
	RollingBack Phase = "rolling_back"
)

// ErrBusy is returned by Lock when another online process holds the schema.
var ErrBusy = errors.New("another online process is working on this schema")

// Record is one migration's row.
type Record struct {
	Schema        string          `json:"schema"`
	Name          string          `json:"name"`
	VersionSchema string          `json:"version_schema"`
	Parent        string          `json:"parent,omitempty"`
	Document      json.RawMessage `json:"document"`
	Plan          json.RawMessage `json:"plan"`
	Phase         Phase           `json:"phase"`
	StepsDone     int             `json:"steps_done"`
	ContractDone  int             `json:"contract_done"`
	StartedAt     time.Time       `json:"started_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
	CompletedAt   *time.Time      `json:"completed_at,omitempty"`
	// The columns below were added for the migrations directory workflow;
	// Init adds them to a state schema an older online created.

	// Kind is KindMigration, KindBaseline or KindRevert.
	Kind string `json:"kind"`
	// Reverts names the migration a KindRevert record undoes.
	Reverts string `json:"reverts,omitempty"`
	// Files are the files of a migrations directory this migration applied:
	// one, or several for a window. Empty for `online start FILE`.
	Files []File `json:"files,omitempty"`
	// AppliedBy is the database role (current_user) that applied it, OSUser
	// the operating system user of the process.
	AppliedBy string `json:"applied_by,omitempty"`
	OSUser    string `json:"os_user,omitempty"`
	// Duration is the time start and complete spent working (not the time
	// the migration waited in progress between them).
	Duration time.Duration `json:"duration_ns,omitempty"`
	// Before is the schema model before the migration started, as JSON;
	// revert reads old column types and defaults from it.
	Before json.RawMessage `json:"-"`
}

// Record kinds.
const (
	KindMigration = "migration"
	KindBaseline  = "baseline" // recorded by `online baseline`; nothing ran
	KindRevert    = "revert"   // the inverse of an earlier migration
)

// File is one file of a migrations directory as it was applied.
type File struct {
	// Name is the file name with its extension ("003_rename.yaml").
	Name string `json:"name"`
	// Checksum is the SHA-256 of the file's normalized document.
	Checksum string `json:"checksum"`
	// Document is the file's content as JSON, for `online pull`.
	Document json.RawMessage `json:"document"`
}

// Backfill is the checkpoint of one backfill task of a migration, or of one
// range (Part) of it when the task is walked by parallel workers.
type Backfill struct {
	Task int `json:"task"`
	// Part numbers the ranges of a task walked in parallel, from 0; a task
	// walked whole has only part 0. Store.Backfills sums the parts up.
	Part      int      `json:"part,omitempty"`
	Table     string   `json:"table"`
	LastKey   []string `json:"last_key,omitempty"`
	RowsDone  int64    `json:"rows_done"`
	RowsTotal int64    `json:"rows_total"`
	Done      bool     `json:"done"`
	// Rate is rows per second over the last batches before the checkpoint.
	Rate      float64   `json:"rate"`
	UpdatedAt time.Time `json:"updated_at"`
	// RangeLo and RangeHi bound a part's keys: above RangeLo (nil: from the
	// start) up to RangeHi (nil: to the end).
	RangeLo []string `json:"range_lo,omitempty"`
	RangeHi []string `json:"range_hi,omitempty"`
	// Parts is how many ranges a summed-up task has (Store.Backfills).
	Parts int `json:"parts,omitempty"`
	// State is set by `online status`: running, stopped, waiting or done.
	State string `json:"state,omitempty"`
	// ReplicaLag is the standby lag the backfill last waited for, when it
	// paused for it; 0 when it did not.
	ReplicaLag time.Duration `json:"replica_lag_ns,omitempty"`
	// Duty is the share of time the backfill ran batches at its last
	// checkpoint while it yielded to the application's writes; 0 or 1
	// when it did not slow down.
	Duty float64 `json:"duty,omitempty"`
}

// Querier is a connection or transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Store reads and writes the state schema.
type Store struct {
	Schema string // the state schema
}

func (s Store) t(name string) string { return pg.Ident(s.Schema, name) }

// Init creates the state schema and its tables when missing; safe to run
// any number of times, concurrently too.
func (s Store) Init(ctx context.Context, q Querier) error {
	stmts := []string{
		"CREATE SCHEMA IF NOT EXISTS " + pg.Ident(s.Schema),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  schema         text NOT NULL,
  name           text NOT NULL,
  version_schema text NOT NULL,
  parent         text,
  document       jsonb NOT NULL,
  plan           jsonb NOT NULL,
  phase          text NOT NULL,
  steps_done     int NOT NULL DEFAULT 0,
  contract_done  int NOT NULL DEFAULT 0,
  started_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  completed_at   timestamptz,
  PRIMARY KEY (schema, name)
)`, s.t("migrations")),
		// At most one migration in progress per schema, enforced by the
		// database itself and not only by the advisory lock.
		fmt.Sprintf("CREATE UNIQUE INDEX IF NOT EXISTS migrations_one_in_progress ON %s (schema) WHERE phase <> 'complete'", s.t("migrations")),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  schema     text NOT NULL,
  migration  text NOT NULL,
  task       int NOT NULL,
  tbl        text NOT NULL,
  last_key   text[],
  rows_done  bigint NOT NULL DEFAULT 0,
  rows_total bigint NOT NULL DEFAULT 0,
  done       boolean NOT NULL DEFAULT false,
  rate       double precision NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (schema, migration, task)
)`, s.t("backfills")),
		// Statements PostgreSQL cannot run inside a transaction (DROP INDEX
		// CONCURRENTLY), queued by the transaction of a complete or a
		// rollback and run after it commits; whatever a crash leaves here
		// is run by the next command.
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  schema     text NOT NULL,
  migration  text NOT NULL,
  seq        int NOT NULL,
  sql        text NOT NULL,
  queued_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (schema, migration, seq)
)`, s.t("pending")),
		// Columns of the directory workflow, added to state schemas made by
		// an older online; ADD COLUMN IF NOT EXISTS keeps Init idempotent.
		fmt.Sprintf(`ALTER TABLE %s
  ADD COLUMN IF NOT EXISTS kind        text NOT NULL DEFAULT 'migration',
  ADD COLUMN IF NOT EXISTS reverts     text,
  ADD COLUMN IF NOT EXISTS files       jsonb NOT NULL DEFAULT '[]',
  ADD COLUMN IF NOT EXISTS applied_by  text,
  ADD COLUMN IF NOT EXISTS os_user     text,
  ADD COLUMN IF NOT EXISTS duration_ms bigint NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS before      jsonb`, s.t("migrations")),
		// The schema model right after a migration completed: what the
		// database should look like until the next one (drift).
		fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS after jsonb", s.t("migrations")),
		// What the migrations table cannot keep: a rolled-back migration
		// leaves no row there, so `online history` reads it here.
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  schema     text NOT NULL,
  migration  text NOT NULL,
  event      text NOT NULL,
  at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  applied_by text NOT NULL DEFAULT current_user,
  os_user    text,
  kind       text NOT NULL,
  files      jsonb NOT NULL DEFAULT '[]'
)`, s.t("migration_events")),
		// Ranges of parallel backfill workers, added to older state
		// schemas; an older checkpoint becomes part 0 walking its task whole.
		fmt.Sprintf(`ALTER TABLE %s
  ADD COLUMN IF NOT EXISTS part        int NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS range_lo    text[],
  ADD COLUMN IF NOT EXISTS range_hi    text[],
  ADD COLUMN IF NOT EXISTS replica_lag_ms bigint NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS duty        real NOT NULL DEFAULT 1`, s.t("backfills")),
	}
	// A state schema already in this layout is left alone: its ALTER
	// TABLEs, though they change nothing, would wait for the lock of every
	// state table, and a second process would then time out behind the
	// first one's open transaction instead of being told that another
	// process is at work. The layout is the schema's comment, a hash of
	// the statements that build it.
	mark := layoutMark(stmts)
	current := func(q Querier) (bool, error) {
		var yes bool
		err := q.QueryRow(ctx, `SELECT coalesce(obj_description(to_regnamespace($1), 'pg_namespace') = $2, false)
			AND to_regclass($3) IS NOT NULL AND to_regclass($4) IS NOT NULL AND to_regclass($5) IS NOT NULL AND to_regclass($6) IS NOT NULL`,
			s.Schema, mark, s.t("migrations"), s.t("backfills"), s.t("pending"), s.t("migration_events")).Scan(&yes)
		if err != nil {
			return false, fmt.Errorf("init state schema %s: read its layout: %w", s.Schema, err)
		}
		return yes, nil
	}
	if yes, err := current(q); err != nil || yes {
		return err
	}
	stmts = append(stmts, fmt.Sprintf("COMMENT ON SCHEMA %s IS %s", pg.Ident(s.Schema), pg.Literal(mark)))
	// Two processes initialising at once can both pass IF NOT EXISTS and
	// collide on the catalog; a transaction-level advisory lock orders them.
	return pgx.BeginFunc(ctx, txBeginner{q}, func(tx pgx.Tx) error {
		// The locks waited for here are online's own (the init lock, the
		// state tables), which no application takes: the session's short
		// lock_timeout, meant for the application's tables, would only
		// fail a second process while the first one initialises on a
		// slow server.
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '1min'"); err != nil {
			return fmt.Errorf("init state schema %s: %w", s.Schema, err)
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", lockClass, int32(hash("init:"+s.Schema))); err != nil {
			return fmt.Errorf("init state schema %s: %w", s.Schema, err)
		}
		// Another process may have brought it up to date meanwhile.
		if yes, err := current(tx); err != nil || yes {
			return err
		}
		for _, stmt := range stmts {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("init state schema %s: %w", s.Schema, pg.WithSQL(err, stmt))
			}
		}
		return s.widenBackfillKey(ctx, tx)
	})
}

// widenBackfillKey makes part a column of the backfills table's primary key,
// once: a state schema made before parallel backfills keys it by task alone.
// Asked of the catalog first so that Init does not rebuild the index (and
// lock the table) every time it runs.
func (s Store) widenBackfillKey(ctx context.Context, tx pgx.Tx) error {
	var narrow bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = to_regclass($1) AND c.contype = 'p'
  AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attname = 'part' AND a.attnum = ANY (c.conkey)))`,
		s.t("backfills")).Scan(&narrow)
	if err != nil {
		return fmt.Errorf("init state schema %s: %w", s.Schema, err)
	}
	if !narrow {
		return nil
	}
	var con string
	if err := tx.QueryRow(ctx, `SELECT conname FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'p'`, s.t("backfills")).Scan(&con); err != nil {
		return fmt.Errorf("init state schema %s: %w", s.Schema, err)
	}
	stmt := fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s, ADD PRIMARY KEY (schema, migration, task, part)", s.t("backfills"), pg.Ident(con))
	if _, err := tx.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("init state schema %s: %w", s.Schema, pg.WithSQL(err, stmt))
	}
	return nil
}

// layoutMark names the layout the statements build, for the state schema's
// comment: a change to any of them makes a new mark, and Init runs them again.
func layoutMark(stmts []string) string {
	h := fnv.New64a()
	for _, st := range stmts {
		h.Write([]byte(st))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("online state, layout %016x", h.Sum64())
}

type txBeginner struct{ q Querier }

func (b txBeginner) Begin(ctx context.Context) (pgx.Tx, error) {
	if bb, ok := b.q.(interface {
		Begin(context.Context) (pgx.Tx, error)
	}); ok {
		return bb.Begin(ctx)
	}
	return nil, errors.New("state: Init needs a connection, not a transaction")
}

// lockClass is the first key of online's advisory locks, so they do not
// collide with an application's single-key locks.
const lockClass int32 = 0x6f6e6c // "onl"

func hash(s string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return h.Sum32()
}

// Lock takes the session advisory lock that keeps two online processes off
// one schema. It does not wait: a second process gets ErrBusy at once. The
// lock goes with the connection, so a crashed process never leaves it held.
func (s Store) Lock(ctx context.Context, q Querier, schema string) (unlock func(context.Context) error, err error) {
	return s.LockWait(ctx, q, schema, 0, nil)
}

// LockWait is Lock that keeps trying for up to wait while another session
// holds the lock, calling onBusy (when set) once with a description of the
// holder before it starts waiting.
//
// Why wait at all: a process killed with SIGKILL leaves its server session
// behind for a moment, holding the lock, until the server notices the
// closed socket; one killed inside a statement keeps it until the statement
// ends or client_connection_check_interval finds the client gone. A deploy
// script that retries at once would be turned away by a process that no
// longer exists. The server cannot tell a vanished client from a live one
// between two statements, so no session is ended: a live holder still gets
// ErrBusy, after the wait.
func (s Store) LockWait(ctx context.Context, q Querier, schema string, wait time.Duration, onBusy func(holder string)) (unlock func(context.Context) error, err error) {
	key := int32(hash(s.Schema + "\x00" + schema))
	deadline := time.Now().Add(wait)
	for first := true; ; first = false {
		var got bool
		if err := q.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", lockClass, key).Scan(&got); err != nil {
			return nil, fmt.Errorf("take the migration lock: %w", err)
		}
		if got {
			return func(ctx context.Context) error {
				_, err := q.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", lockClass, key)
				return err
			}, nil
		}
		holder := s.holder(ctx, q, key)
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w (schema %q, held by %s); wait for it to finish", ErrBusy, schema, holder)
		}
		if first && onBusy != nil {
			onBusy(holder)
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("take the migration lock: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Held reports whether some session holds the schema's lock: an online
// process is at work on it now.
func (s Store) Held(ctx context.Context, q Querier, schema string) (bool, error) {
	key := int32(hash(s.Schema + "\x00" + schema))
	var held bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.classid = $1::oid AND l.objid = $2::oid AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))`, uint32(lockClass), uint32(key)).Scan(&held)
	if err != nil {
		return false, fmt.Errorf("look for the migration lock: %w", err)
	}
	return held, nil
}

// holder describes the sessions holding the lock key, for messages.
func (s Store) holder(ctx context.Context, q Querier, key int32) string {
	var holder string
	err := q.QueryRow(ctx, `SELECT coalesce(string_agg(format('pid %s (%s, %s, %s since %s)', a.pid, a.application_name, coalesce(host(a.client_addr), 'local'), a.state, to_char(a.state_change, 'HH24:MI:SS')), ', '), 'a session that just ended')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.classid = $1::oid AND l.objid = $2::oid AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`, uint32(lockClass), uint32(key)).Scan(&holder)
	if err != nil {
		return "unknown"
	}
	return holder
}

const recordCols = "schema, name, version_schema, coalesce(parent, ''), document, plan, phase, steps_done, contract_done, started_at, updated_at, completed_at, " +
	"kind, coalesce(reverts, ''), files, coalesce(applied_by, ''), coalesce(os_user, ''), duration_ms, before"

func scanRecord(row pgx.Row) (*Record, error) {
	r := &Record{}
	var files []byte
	var ms int64
	err := row.Scan(&r.Schema, &r.Name, &r.VersionSchema, &r.Parent, &r.Document, &r.Plan, &r.Phase, &r.StepsDone, &r.ContractDone, &r.StartedAt, &r.UpdatedAt, &r.CompletedAt,
		&r.Kind, &r.Reverts, &files, &r.AppliedBy, &r.OSUser, &ms, &r.Before)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r.Duration = time.Duration(ms) * time.Millisecond
	if err := json.Unmarshal(files, &r.Files); err != nil {
		return nil, fmt.Errorf("read the files of migration %s: %w", r.Name, err)
	}
	return r, nil
}

// exists reports whether the state tables exist (a database online never
// touched has none; reading it must not create them).
func (s Store) exists(ctx context.Context, q Querier) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", pg.Ident(s.Schema, "migrations")).Scan(&ok)
	return ok, err
}

// InProgress returns the migration in progress on schema, or nil.
func (s Store) InProgress(ctx context.Context, q Querier, schema string) (*Record, error) {
	if ok, err := s.exists(ctx, q); err != nil || !ok {
		return nil, err
	}
	r, err := scanRecord(q.QueryRow(ctx, "SELECT "+recordCols+" FROM "+s.t("migrations")+" WHERE schema = $1 AND phase <> 'complete'", schema))
	if err != nil {
		return nil, fmt.Errorf("read the migration in progress: %w", err)
	}
	return r, nil
}

// Get returns a migration by name, or nil.
func (s Store) Get(ctx context.Context, q Querier, schema, name string) (*Record, error) {
	if ok, err := s.exists(ctx, q); err != nil || !ok {
		return nil, err
	}
	r, err := scanRecord(q.QueryRow(ctx, "SELECT "+recordCols+" FROM "+s.t("migrations")+" WHERE schema = $1 AND name = $2", schema, name))
	if err != nil {
		return nil, fmt.Errorf("read migration %s: %w", name, err)
	}
	return r, nil
}

// LatestComplete returns the newest completed migration of schema, or nil.
func (s Store) LatestComplete(ctx context.Context, q Querier, schema string) (*Record, error) {
	if ok, err := s.exists(ctx, q); err != nil || !ok {
		return nil, err
	}
	r, err := scanRecord(q.QueryRow(ctx, "SELECT "+recordCols+" FROM "+s.t("migrations")+" WHERE schema = $1 AND phase = 'complete' ORDER BY completed_at DESC, started_at DESC LIMIT 1", schema))
	if err != nil {
		return nil, fmt.Errorf("read the latest migration: %w", err)
	}
	return r, nil
}

// LatestVersioned returns the newest completed migration of schema that
// published a version schema, or nil: a baseline, recorded without running
// anything, published none.
func (s Store) LatestVersioned(ctx context.Context, q Querier, schema string) (*Record, error) {
	if ok, err := s.exists(ctx, q); err != nil || !ok {
		return nil, err
	}
	r, err := scanRecord(q.QueryRow(ctx, "SELECT "+recordCols+" FROM "+s.t("migrations")+" WHERE schema = $1 AND phase = 'complete' AND version_schema <> '' ORDER BY completed_at DESC, started_at DESC LIMIT 1", schema))
	if err != nil {
		return nil, fmt.Errorf("read the latest migration: %w", err)
	}
	return r, nil
}

// History lists the migrations of schema, oldest first.
func (s Store) History(ctx context.Context, q Querier, schema string) ([]Record, error) {
	if ok, err := s.exists(ctx, q); err != nil || !ok {
		return nil, err
	}
	rows, err := q.Query(ctx, "SELECT "+recordCols+" FROM "+s.t("migrations")+" WHERE schema = $1 ORDER BY started_at, name", schema)
	if err != nil {
		return nil, fmt.Errorf("read migration history: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("read migration history: %w", err)
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

// Insert records a new migration in phase Expanding.
func (s Store) Insert(ctx context.Context, q Querier, r *Record) error {
	kind := r.Kind
	if kind == "" {
		kind = KindMigration
	}
	files, err := json.Marshal(filesOrEmpty(r.Files))
	if err != nil {
		return fmt.Errorf("record migration %s: %w", r.Name, err)
	}
	_, err = q.Exec(ctx, "INSERT INTO "+s.t("migrations")+` (schema, name, version_schema, parent, document, plan, phase, kind, reverts, files, applied_by, os_user, before)
VALUES ($1, $2, $3, nullif($4, ''), $5, $6, $7, $8, nullif($9, ''), $10, current_user, nullif($11, ''), $12)`,
		r.Schema, r.Name, r.VersionSchema, r.Parent, r.Document, r.Plan, string(Expanding), kind, r.Reverts, files, r.OSUser, nullJSON(r.Before))
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return fmt.Errorf("record migration %s: another migration is already in progress on schema %s, or one named %s exists: %w", r.Name, r.Schema, r.Name, err)
		}
		return fmt.Errorf("record migration %s: %w", r.Name, err)
	}
	return nil
}

// SetPhase moves a migration to another phase.
func (s Store) SetPhase(ctx context.Context, q Querier, schema, name string, p Phase) error {
	sql := "UPDATE " + s.t("migrations") + " SET phase = $3, updated_at = now()"
	if p == Complete {
		sql += ", completed_at = now()"
	}
	_, err := q.Exec(ctx, sql+" WHERE schema = $1 AND name = $2", schema, name, string(p))
	if err != nil {
		return fmt.Errorf("record phase %s of migration %s: %w", p, name, err)
	}
	return nil
}

// SetStepsDone records how many expand and finish steps have run.
func (s Store) SetStepsDone(ctx context.Context, q Querier, schema, name string, n int) error {
	_, err := q.Exec(ctx, "UPDATE "+s.t("migrations")+" SET steps_done = $3, updated_at = now() WHERE schema = $1 AND name = $2", schema, name, n)
	if err != nil {
		return fmt.Errorf("record progress of migration %s: %w", name, err)
	}
	return nil
}

// SetContractDone records how many contract steps have run.
func (s Store) SetContractDone(ctx context.Context, q Querier, schema, name string, n int) error {
	_, err := q.Exec(ctx, "UPDATE "+s.t("migrations")+" SET contract_done = $3, updated_at = now() WHERE schema = $1 AND name = $2", schema, name, n)
	if err != nil {
		return fmt.Errorf("record progress of migration %s: %w", name, err)
	}
	return nil
}

// Delete removes a rolled-back migration and its checkpoints.
func (s Store) Delete(ctx context.Context, q Querier, schema, name string) error {
	if _, err := q.Exec(ctx, "DELETE FROM "+s.t("backfills")+" WHERE schema = $1 AND migration = $2", schema, name); err != nil {
		return fmt.Errorf("forget migration %s: %w", name, err)
	}
	if _, err := q.Exec(ctx, "DELETE FROM "+s.t("migrations")+" WHERE schema = $1 AND name = $2", schema, name); err != nil {
		return fmt.Errorf("forget migration %s: %w", name, err)
	}
	return nil
}

// SaveBackfill writes a backfill checkpoint; the caller runs it in the same
// transaction as the batch it describes.
func (s Store) SaveBackfill(ctx context.Context, q Querier, schema, migration string, b Backfill) error {
	_, err := q.Exec(ctx, "INSERT INTO "+s.t("backfills")+` (schema, migration, task, part, tbl, last_key, rows_done, rows_total, done, rate, range_lo, range_hi, replica_lag_ms, duty)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (schema, migration, task, part) DO UPDATE SET last_key = EXCLUDED.last_key, rows_done = EXCLUDED.rows_done,
  rows_total = EXCLUDED.rows_total, done = EXCLUDED.done, rate = EXCLUDED.rate, replica_lag_ms = EXCLUDED.replica_lag_ms, duty = EXCLUDED.duty, updated_at = now()`,
		schema, migration, b.Task, b.Part, b.Table, b.LastKey, b.RowsDone, b.RowsTotal, b.Done, b.Rate, b.RangeLo, b.RangeHi, b.ReplicaLag.Milliseconds(), dutyOf(b))
	if err != nil {
		return fmt.Errorf("save backfill checkpoint of %s: %w", b.Table, err)
	}
	return nil
}

// dutyOf is the duty cycle to record: 1 when the backfill did not slow down.
func dutyOf(b Backfill) float64 {
	if b.Duty <= 0 || b.Duty > 1 {
		return 1
	}
	return b.Duty
}

// Backfills returns the checkpoints of a migration by task, the parts of a
// task walked in parallel summed up: rows done, rows total and rates added,
// done when every part is, the newest update; LastKey only when the task has
// a single part.
func (s Store) Backfills(ctx context.Context, q Querier, schema, migration string) (map[int]Backfill, error) {
	parts, err := s.BackfillParts(ctx, q, schema, migration)
	if err != nil {
		return nil, err
	}
	out := map[int]Backfill{}
	for _, p := range parts {
		b, seen := out[p.Task]
		if !seen {
			p.Parts = 1
			out[p.Task] = p
			continue
		}
		b.Parts++
		b.LastKey, b.RangeLo, b.RangeHi = nil, nil, nil
		b.RowsDone += p.RowsDone
		b.RowsTotal += p.RowsTotal
		b.Rate += p.Rate
		b.Done = b.Done && p.Done
		b.ReplicaLag = max(b.ReplicaLag, p.ReplicaLag)
		b.Duty = min(b.Duty, p.Duty)
		if p.UpdatedAt.After(b.UpdatedAt) {
			b.UpdatedAt = p.UpdatedAt
		}
		out[p.Task] = b
	}
	return out, nil
}

// BackfillParts returns every checkpoint of a migration, one per task and
// part, in task and part order.
func (s Store) BackfillParts(ctx context.Context, q Querier, schema, migration string) ([]Backfill, error) {
	if ok, err := s.exists(ctx, q); err != nil || !ok {
		return nil, err
	}
	rows, err := q.Query(ctx, "SELECT task, part, tbl, last_key, rows_done, rows_total, done, rate, updated_at, range_lo, range_hi, replica_lag_ms, duty FROM "+s.t("backfills")+
		" WHERE schema = $1 AND migration = $2 ORDER BY task, part", schema, migration)
	if err != nil {
		return nil, fmt.Errorf("read backfill checkpoints: %w", err)
	}
	defer rows.Close()
	var out []Backfill
	for rows.Next() {
		var b Backfill
		var lagMS int64
		if err := rows.Scan(&b.Task, &b.Part, &b.Table, &b.LastKey, &b.RowsDone, &b.RowsTotal, &b.Done, &b.Rate, &b.UpdatedAt, &b.RangeLo, &b.RangeHi, &lagMS, &b.Duty); err != nil {
			return nil, fmt.Errorf("read backfill checkpoints: %w", err)
		}
		b.ReplicaLag = time.Duration(lagMS) * time.Millisecond
		out = append(out, b)
	}
	return out, rows.Err()
}

// Meta is what the directory workflow records about a migration beside what
// Start records.
type Meta struct {
	Kind    string
	Reverts string
	Files   []File
	OSUser  string
	Before  json.RawMessage
}

// SetMeta records the files, kind and authors of a migration. applied_by is
// the role of the session that records it.
func (s Store) SetMeta(ctx context.Context, q Querier, schema, name string, m Meta) error {
	if m.Kind == "" {
		m.Kind = KindMigration
	}
	files, err := json.Marshal(filesOrEmpty(m.Files))
	if err != nil {
		return fmt.Errorf("record the files of migration %s: %w", name, err)
	}
	_, err = q.Exec(ctx, "UPDATE "+s.t("migrations")+` SET kind = $3, reverts = nullif($4, ''), files = $5, applied_by = current_user,
  os_user = nullif($6, ''), before = coalesce($7, before) WHERE schema = $1 AND name = $2`,
		schema, name, m.Kind, m.Reverts, files, m.OSUser, nullJSON(m.Before))
	if err != nil {
		return fmt.Errorf("record the files of migration %s: %w", name, err)
	}
	return nil
}

// AddDuration adds to the working time recorded for a migration.
func (s Store) AddDuration(ctx context.Context, q Querier, schema, name string, d time.Duration) error {
	_, err := q.Exec(ctx, "UPDATE "+s.t("migrations")+" SET duration_ms = duration_ms + $3 WHERE schema = $1 AND name = $2", schema, name, d.Milliseconds())
	if err != nil {
		return fmt.Errorf("record the duration of migration %s: %w", name, err)
	}
	return nil
}

// InsertApplied records a migration as complete without running anything:
// what `online baseline` writes. Its version schema is empty, so no later
// migration takes it for the old version's schema.
func (s Store) InsertApplied(ctx context.Context, q Querier, r *Record) error {
	files, err := json.Marshal(filesOrEmpty(r.Files))
	if err != nil {
		return fmt.Errorf("record migration %s: %w", r.Name, err)
	}
	_, err = q.Exec(ctx, "INSERT INTO "+s.t("migrations")+` (schema, name, version_schema, document, plan, phase, completed_at, kind, files, applied_by, os_user, before, started_at)
VALUES ($1, $2, '', $3, '{}', 'complete', clock_timestamp(), $4, $5, current_user, nullif($6, ''), $7, clock_timestamp())`,
		r.Schema, r.Name, r.Document, r.Kind, files, r.OSUser, nullJSON(r.Before))
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return fmt.Errorf("record migration %s: a migration of that name is already recorded: %w", r.Name, err)
		}
		return fmt.Errorf("record migration %s: %w", r.Name, err)
	}
	return nil
}

func filesOrEmpty(f []File) []File {
	if f == nil {
		return []File{}
	}
	return f
}

// nullJSON makes an empty document SQL NULL rather than invalid jsonb.
func nullJSON(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return []byte(b)
}

// Pending is a statement queued to run after the transaction that queued it
// committed.
type Pending struct {
	Migration string
	Seq       int
	SQL       string
}

// QueuePending queues statements for after the commit of q's transaction.
func (s Store) QueuePending(ctx context.Context, q Querier, schema, migration string, stmts []string) error {
	for i, stmt := range stmts {
		_, err := q.Exec(ctx, "INSERT INTO "+s.t("pending")+` (schema, migration, seq, sql) VALUES ($1, $2, $3, $4)
ON CONFLICT (schema, migration, seq) DO UPDATE SET sql = EXCLUDED.sql`, schema, migration, i, stmt)
		if err != nil {
			return fmt.Errorf("queue the statements to run after the commit: %w", err)
		}
	}
	return nil
}

// PendingOf lists the queued statements of schema, in order.
func (s Store) PendingOf(ctx context.Context, q Querier, schema string) ([]Pending, error) {
	if ok, err := s.exists(ctx, q); err != nil || !ok {
		return nil, err
	}
	rows, err := q.Query(ctx, "SELECT migration, seq, sql FROM "+s.t("pending")+" WHERE schema = $1 ORDER BY queued_at, migration, seq", schema)
	if err != nil {
		return nil, fmt.Errorf("read the statements queued after a commit: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Pending, error) {
		var p Pending
		err := row.Scan(&p.Migration, &p.Seq, &p.SQL)
		return p, err
	})
}

// DonePending forgets a queued statement once it has run.
func (s Store) DonePending(ctx context.Context, q Querier, schema string, p Pending) error {
	_, err := q.Exec(ctx, "DELETE FROM "+s.t("pending")+" WHERE schema = $1 AND migration = $2 AND seq = $3", schema, p.Migration, p.Seq)
	if err != nil {
		return fmt.Errorf("forget a statement that ran after the commit: %w", err)
	}
	return nil
}

// Rename gives a migration's record, its checkpoints and queued statements
// another name, and makes the revert records that name it follow: the
// history of one migration run, reverted, then run again keeps both runs.
func (s Store) Rename(ctx context.Context, q Querier, schema, from, to string) error {
	stmts := []string{
		"UPDATE " + s.t("migrations") + " SET name = $3 WHERE schema = $1 AND name = $2",
		"UPDATE " + s.t("migrations") + " SET reverts = $3 WHERE schema = $1 AND reverts = $2",
		"UPDATE " + s.t("backfills") + " SET migration = $3 WHERE schema = $1 AND migration = $2",
		"UPDATE " + s.t("pending") + " SET migration = $3 WHERE schema = $1 AND migration = $2",
	}
	for _, stmt := range stmts {
		if _, err := q.Exec(ctx, stmt, schema, from, to); err != nil {
			return fmt.Errorf("rename migration %s to %s in the history: %w", from, to, err)
		}
	}
	return nil
}

// SetAfter records the schema model right after migration name completed.
func (s Store) SetAfter(ctx context.Context, q Querier, schema, name string, model json.RawMessage) error {
	if _, err := q.Exec(ctx, "UPDATE "+s.t("migrations")+" SET after = $3 WHERE schema = $1 AND name = $2", schema, name, nullJSON(model)); err != nil {
		return fmt.Errorf("record the schema after migration %s: %w", name, err)
	}
	return nil
}

// After returns the schema model recorded after migration name completed,
// or, for a baseline, the one it recorded: nil when none was.
func (s Store) After(ctx context.Context, q Querier, schema, name string) (json.RawMessage, error) {
	if ok, err := s.exists(ctx, q); err != nil || !ok {
		return nil, err
	}
	var model []byte
	err := q.QueryRow(ctx, "SELECT CASE WHEN kind = 'baseline' THEN coalesce(after, before) ELSE after END FROM "+s.t("migrations")+" WHERE schema = $1 AND name = $2", schema, name).Scan(&model)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the schema recorded after migration %s: %w", name, err)
	}
	return model, nil
}

// Event is a step of the history that the migrations table does not keep.
type Event struct {
	Migration string    `json:"migration"`
	Event     string    `json:"event"`
	At        time.Time `json:"at"`
	AppliedBy string    `json:"applied_by"`
	OSUser    string    `json:"os_user,omitempty"`
	Kind      string    `json:"kind"`
	Files     []string  `json:"files,omitempty"`
}

// AddEvent records an event of a migration: "rolled_back".
func (s Store) AddEvent(ctx context.Context, q Querier, schema string, ev Event) error {
	files, err := json.Marshal(append([]string{}, ev.Files...))
	if err != nil {
		return fmt.Errorf("record event %s of %s: %w", ev.Event, ev.Migration, err)
	}
	_, err = q.Exec(ctx, "INSERT INTO "+s.t("migration_events")+" (schema, migration, event, os_user, kind, files) VALUES ($1, $2, $3, nullif($4, ''), $5, $6)",
		schema, ev.Migration, ev.Event, ev.OSUser, ev.Kind, files)
	if err != nil {
		return fmt.Errorf("record event %s of %s: %w", ev.Event, ev.Migration, err)
	}
	return nil
}

// Events lists the recorded events of schema, oldest first.
func (s Store) Events(ctx context.Context, q Querier, schema string) ([]Event, error) {
	var ok bool
	if err := q.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", s.t("migration_events")).Scan(&ok); err != nil || !ok {
		return nil, err
	}
	rows, err := q.Query(ctx, "SELECT migration, event, at, applied_by, coalesce(os_user, ''), kind, files FROM "+s.t("migration_events")+" WHERE schema = $1 ORDER BY at", schema)
	if err != nil {
		return nil, fmt.Errorf("read the events of the history: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Event, error) {
		var ev Event
		var files []byte
		if err := row.Scan(&ev.Migration, &ev.Event, &ev.At, &ev.AppliedBy, &ev.OSUser, &ev.Kind, &files); err != nil {
			return ev, err
		}
		return ev, json.Unmarshal(files, &ev.Files)
	})
}
