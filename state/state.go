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
}

// Backfill is the checkpoint of one backfill task of a migration.
type Backfill struct {
	Task      int      `json:"task"`
	Table     string   `json:"table"`
	LastKey   []string `json:"last_key,omitempty"`
	RowsDone  int64    `json:"rows_done"`
	RowsTotal int64    `json:"rows_total"`
	Done      bool     `json:"done"`
	// Rate is rows per second over the run that wrote the checkpoint.
	Rate      float64   `json:"rate"`
	UpdatedAt time.Time `json:"updated_at"`
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
	}
	// Two processes initialising at once can both pass IF NOT EXISTS and
	// collide on the catalog; a transaction-level advisory lock orders them.
	return pgx.BeginFunc(ctx, txBeginner{q}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", lockClass, int32(hash("init:"+s.Schema))); err != nil {
			return fmt.Errorf("init state schema %s: %w", s.Schema, err)
		}
		for _, stmt := range stmts {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("init state schema %s: %w", s.Schema, pg.WithSQL(err, stmt))
			}
		}
		return nil
	})
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

const recordCols = "schema, name, version_schema, coalesce(parent, ''), document, plan, phase, steps_done, contract_done, started_at, updated_at, completed_at"

func scanRecord(row pgx.Row) (*Record, error) {
	r := &Record{}
	err := row.Scan(&r.Schema, &r.Name, &r.VersionSchema, &r.Parent, &r.Document, &r.Plan, &r.Phase, &r.StepsDone, &r.ContractDone, &r.StartedAt, &r.UpdatedAt, &r.CompletedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return r, err
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
	_, err := q.Exec(ctx, "INSERT INTO "+s.t("migrations")+" (schema, name, version_schema, parent, document, plan, phase) VALUES ($1, $2, $3, nullif($4, ''), $5, $6, $7)",
		r.Schema, r.Name, r.VersionSchema, r.Parent, r.Document, r.Plan, string(Expanding))
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
	_, err := q.Exec(ctx, "INSERT INTO "+s.t("backfills")+` (schema, migration, task, tbl, last_key, rows_done, rows_total, done, rate)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (schema, migration, task) DO UPDATE SET last_key = EXCLUDED.last_key, rows_done = EXCLUDED.rows_done,
  rows_total = EXCLUDED.rows_total, done = EXCLUDED.done, rate = EXCLUDED.rate, updated_at = now()`,
		schema, migration, b.Task, b.Table, b.LastKey, b.RowsDone, b.RowsTotal, b.Done, b.Rate)
	if err != nil {
		return fmt.Errorf("save backfill checkpoint of %s: %w", b.Table, err)
	}
	return nil
}

// Backfills returns the checkpoints of a migration, by task.
func (s Store) Backfills(ctx context.Context, q Querier, schema, migration string) (map[int]Backfill, error) {
	out := map[int]Backfill{}
	if ok, err := s.exists(ctx, q); err != nil || !ok {
		return out, err
	}
	rows, err := q.Query(ctx, "SELECT task, tbl, last_key, rows_done, rows_total, done, rate, updated_at FROM "+s.t("backfills")+" WHERE schema = $1 AND migration = $2", schema, migration)
	if err != nil {
		return nil, fmt.Errorf("read backfill checkpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b Backfill
		if err := rows.Scan(&b.Task, &b.Table, &b.LastKey, &b.RowsDone, &b.RowsTotal, &b.Done, &b.Rate, &b.UpdatedAt); err != nil {
			return nil, fmt.Errorf("read backfill checkpoints: %w", err)
		}
		out[b.Task] = b
	}
	return out, rows.Err()
}
