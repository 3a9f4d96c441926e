package phases

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/operations"
)

// runStep runs one step under the retry policy. Transactional steps run with
// their progress record (after) in one transaction, so a crash never leaves
// a step done but unrecorded. A NoTx step (CONCURRENTLY) runs statement by
// statement and is recorded after; its statements are written to be safe to
// run again.
func (e *Engine) runStep(ctx context.Context, s operations.Step, after func(pgx.Tx) error) error {
	e.log.Info().Str(keyEvent, evStep).Str(keyStep, s.Do).Msg(s.Do)
	if s.NoTx {
		// A concurrent build waits for transactions that started before
		// it; that wait blocks no application query (it holds only SHARE
		// UPDATE EXCLUSIVE), so it is not cut short by lock_timeout.
		if _, err := e.conn.Exec(ctx, "SET lock_timeout = 0"); err != nil {
			return fmt.Errorf("%s: %w", s.Do, err)
		}
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5e9)
			defer cancel()
			_, _ = e.conn.Exec(rctx, fmt.Sprintf("SET lock_timeout = '%dms'", e.cfg.LockTimeout.Milliseconds()))
		}()
		for _, stmt := range s.SQL {
			e.log.Debug().Str(keySQL, stmt).Msg("exec")
			err := e.retry.Do(ctx, func(ctx context.Context) error {
				_, err := e.conn.Exec(ctx, stmt)
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", s.Do, pg.WithSQL(err, stmt))
			}
		}
		if after == nil {
			return nil
		}
		return pgx.BeginFunc(ctx, e.conn, after)
	}
	var failed string
	err := e.retry.Do(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, e.conn, func(tx pgx.Tx) error {
			for _, stmt := range s.SQL {
				e.log.Debug().Str(keySQL, stmt).Msg("exec")
				if _, err := tx.Exec(ctx, stmt); err != nil {
					failed = stmt
					return err
				}
			}
			if after != nil {
				return after(tx)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("%s: %w", s.Do, pg.WithSQL(err, failed))
	}
	return nil
}

// runUndo runs a step's undo statements; they are idempotent.
func (e *Engine) runUndo(ctx context.Context, s operations.Step) error {
	if len(s.Undo) == 0 {
		return nil
	}
	u := operations.Step{Do: "undo: " + s.Do, SQL: s.Undo, NoTx: s.NoTx}
	return e.runStep(ctx, u, nil)
}

// canceledByServer reports whether the server cancelled a statement
// (SQLSTATE 57014): its statement_timeout ran out, or another session called
// pg_cancel_backend. The step or batch it was in committed nothing, so the
// migration stands where its record says, as after a crash. That cause is
// outside the migration and often passing (a batch that waited for an
// application's row lock), so start keeps the progress for a resume rather
// than undoing everything; the undo would also run under the same timeout
// and could stop halfway.
func canceledByServer(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == pgerrcode.QueryCanceled
}

// connLost reports whether the connection is gone, so that nothing more can
// be done from this process: the state stays for a later resume or rollback.
func (e *Engine) connLost(err error) bool {
	return e.conn.IsClosed() || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// atomic runs stmts and then record in one transaction, retried as a whole
// while a lock is not had within lock_timeout (up to the retry deadline).
// Locks taken by its earlier statements are held while a later one waits,
// for at most lock_timeout, then released by the abort before the pause:
// application queries queue behind it no longer than that. A failure leaves
// nothing of it behind.
func (e *Engine) atomic(ctx context.Context, what string, stmts []string, record func(pgx.Tx) error) error {
	var failed string
	err := e.retry.Do(ctx, func(ctx context.Context) error {
		failed = ""
		return pgx.BeginFunc(ctx, e.conn, func(tx pgx.Tx) error {
			for i, stmt := range stmts {
				if err := e.injected(what, i, stmt); err != nil {
					failed = stmt
					return err
				}
				e.log.Debug().Str(keySQL, stmt).Msg("exec")
				if _, err := tx.Exec(ctx, stmt); err != nil {
					failed = stmt
					return err
				}
			}
			if err := e.injected(what, len(stmts), "record"); err != nil {
				return err
			}
			return record(tx)
		})
	})
	if err != nil {
		return pg.WithSQL(err, failed)
	}
	return nil
}

// ErrPendingLeft is returned (wrapped) by runPending when a statement
// queued after a commit (DROP INDEX CONCURRENTLY) waited past
// --lock-retry-deadline for the transactions it must outlast: it and those
// after it stay queued in the state schema's pending table, and the next
// command runs them. Nothing is wrong with the migration.
var ErrPendingLeft = errors.New("statements left queued for the next online command")

// runPending runs the statements that complete and rollback queued for
// after their transaction committed (DROP INDEX CONCURRENTLY), oldest
// first, each forgotten once it ran. They are idempotent, so a crash
// between running and forgetting one is harmless.
//
// Each waits for the transactions that use its table, under lock_timeout
// set to the lock retry deadline: like every other wait of online, it is
// bounded. One that times out is cancelled by the server (a DROP INDEX
// CONCURRENTLY cut short leaves an invalid index, which running it again
// drops), and it and the rest stay queued: runPending returns
// ErrPendingLeft with the statements left.
func (e *Engine) runPending(ctx context.Context) (int, error) {
	ps, err := e.store.PendingOf(ctx, e.conn, e.cfg.Schema)
	if err != nil {
		return 0, err
	}
	if len(ps) == 0 {
		return 0, nil
	}
	deadline := max(e.cfg.LockRetryDeadline, e.cfg.LockTimeout)
	if _, err := e.conn.Exec(ctx, fmt.Sprintf("SET lock_timeout = '%dms'", deadline.Milliseconds())); err != nil {
		return 0, fmt.Errorf("bound the statements queued after a commit: %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5e9)
		defer cancel()
		_, _ = e.conn.Exec(rctx, fmt.Sprintf("SET lock_timeout = '%dms'", e.cfg.LockTimeout.Milliseconds()))
	}()
	for i, p := range ps {
		if err := e.injected("after", i, p.SQL); err != nil {
			return i, err
		}
		do := "after the commit of " + p.Migration + ": " + p.SQL
		e.log.Info().Str(keyEvent, evStep).Str(keyStep, do).Msg(do)
		if _, err := e.conn.Exec(ctx, p.SQL); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == pgerrcode.LockNotAvailable {
				var left []string
				for _, q := range ps[i:] {
					left = append(left, q.SQL)
				}
				return i, &PendingLeftError{Statements: left, Waited: deadline}
			}
			return i, fmt.Errorf("%s: %w", do, pg.WithSQL(err, p.SQL))
		}
		if err := pgx.BeginFunc(ctx, e.conn, func(tx pgx.Tx) error { return e.store.DonePending(ctx, tx, e.cfg.Schema, p) }); err != nil {
			return i, err
		}
	}
	return len(ps), nil
}

// PendingLeftError lists the statements left queued (see ErrPendingLeft).
type PendingLeftError struct {
	Statements []string
	Waited     time.Duration
}

func (e *PendingLeftError) Error() string {
	return fmt.Sprintf("%v: %s waited %s (--lock-retry-deadline) for transactions that use its table and was cancelled; %d statement(s) stay queued (%s), and the next online command runs them",
		ErrPendingLeft, e.Statements[0], e.Waited, len(e.Statements), strings.Join(e.Statements, "; "))
}

func (e *PendingLeftError) Is(target error) bool { return target == ErrPendingLeft }

// injected calls Config.FailAt, the test knob that makes a statement
// fail; nil in production.
func (e *Engine) injected(what string, i int, stmt string) error {
	if e.cfg.FailAt == nil {
		return nil
	}
	return e.cfg.FailAt(what, i, stmt)
}
