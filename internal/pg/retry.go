package pg

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
)

// Retry says how a statement that timed out waiting for a lock is retried.
// The engine's DDL and the backfill's batches both retry through it.
type Retry struct {
	// Deadline bounds the whole retry loop; zero means one minute.
	Deadline time.Duration
	// MaxAttempts, when positive, bounds the number of attempts too.
	MaxAttempts int
	// Initial is the first pause; it doubles up to Max, each pause jittered.
	Initial, Max time.Duration
	// Retryable says which errors are tried again; nil means a lock
	// timeout or a deadlock (IsLockConflict).
	Retryable func(error) bool
	// OnRetry, if set, is told about each failed attempt before the pause
	// (for logging, or to make the next attempt smaller).
	OnRetry func(attempt int, wait time.Duration, err error)
	// Watch, when set, is started with each attempt and stopped when it
	// ends, returning the sessions the attempt waited for
	// (BlockerWatch.Watch): the *LockTimeoutError names the last seen.
	Watch func(ctx context.Context) (stop func() []Blocker)
}

// LockTimeoutError is returned by Retry.Do when the deadline passed and the
// lock was still not had. It carries how often and how long it tried.
type LockTimeoutError struct {
	Attempts int
	Elapsed  time.Duration
	Err      error
	// Blockers are the sessions the attempts were seen waiting for, when
	// Retry.Watch was set and saw any.
	Blockers []Blocker
}

func (e *LockTimeoutError) Error() string {
	if len(e.Blockers) > 0 {
		return fmt.Sprintf("could not get a lock after %d attempts in %s: %s: %v",
			e.Attempts, e.Elapsed.Round(time.Millisecond), BlockersText(e.Blockers), e.Err)
	}
	return fmt.Sprintf("could not get a lock after %d attempts in %s (other sessions hold conflicting locks; find them in pg_locks/pg_stat_activity, or retry later): %v",
		e.Attempts, e.Elapsed.Round(time.Millisecond), e.Err)
}

func (e *LockTimeoutError) Unwrap() error { return e.Err }

// IsLockTimeout reports whether err is PostgreSQL's lock_not_available (55P03),
// the error lock_timeout raises.
func IsLockTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == pgerrcode.LockNotAvailable
}

// IsLockConflict reports a lock timeout or a deadlock: the attempt lost a
// conflict over a lock, nothing of it committed, and it may be tried again.
func IsLockConflict(err error) bool { return IsLockTimeout(err) || isDeadlock(err) }

// IsSerializationFailure reports PostgreSQL's serialization_failure
// (40001): the transaction was rolled back and may be tried again.
func IsSerializationFailure(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == pgerrcode.SerializationFailure
}

// isDeadlock reports a deadlock PostgreSQL broke by aborting our
// transaction: nothing of it committed, so trying again is safe. With
// lock_timeout below deadlock_timeout (500 ms and 1 s by default) our side
// times out first; a longer lock_timeout can meet the detector instead.
func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == pgerrcode.DeadlockDetected
}

// Do runs fn until it succeeds, fails with an error that is not retryable,
// ctx ends, or the deadline (or MaxAttempts) is reached, which returns a
// *LockTimeoutError. Because each attempt gives up after lock_timeout,
// application queries never queue behind a waiting DDL statement for longer
// than that; the pauses in between let them through. When ctx ends, the
// error wraps ctx's and names the last attempt's.
func (r Retry) Do(ctx context.Context, fn func(context.Context) error) error {
	retryable := r.Retryable
	if retryable == nil {
		retryable = IsLockConflict
	}
	deadline := r.Deadline
	if deadline <= 0 {
		deadline = time.Minute
	}
	wait, maxWait := r.Initial, r.Max
	if wait <= 0 {
		wait = 50 * time.Millisecond
	}
	if maxWait <= 0 {
		maxWait = 5 * time.Second
	}
	start := time.Now()
	var blockers []Blocker
	for attempt := 1; ; attempt++ {
		var err error
		if r.Watch != nil {
			stop := r.Watch(ctx)
			err = fn(ctx)
			if bs := stop(); len(bs) > 0 {
				blockers = bs
			}
		} else {
			err = fn(ctx)
		}
		if err == nil || !retryable(err) {
			return err
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("%w (%v)", ctxErr, err)
		}
		elapsed := time.Since(start)
		if elapsed >= deadline || (r.MaxAttempts > 0 && attempt >= r.MaxAttempts) {
			return &LockTimeoutError{Attempts: attempt, Elapsed: elapsed, Err: err, Blockers: blockers}
		}
		// Full jitter: a random pause in [wait/2, wait) keeps several
		// retrying processes from waking in step.
		pause := wait/2 + time.Duration(rand.Int64N(int64(wait/2)+1))
		if rest := deadline - elapsed; pause > rest {
			pause = rest
		}
		if r.OnRetry != nil {
			r.OnRetry(attempt, pause, err)
		}
		if err := Sleep(ctx, pause); err != nil {
			return err
		}
		wait *= 2
		if wait > maxWait {
			wait = maxWait
		}
	}
}

// Sleep pauses for d or until ctx ends, whichever comes first.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
