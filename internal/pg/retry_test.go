package pg

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
)

func pgErr(code string) error { return &pgconn.PgError{Code: code, Message: "code " + code} }

// fast keeps the pauses short: these tests are about which errors are
// retried and when the loop stops, not the pauses' lengths.
func fast(r Retry) Retry {
	r.Initial, r.Max = time.Millisecond, 2*time.Millisecond
	return r
}

func TestRetryWhichErrors(t *testing.T) {
	t.Parallel()
	custom := func(err error) bool { return IsLockConflict(err) || IsSerializationFailure(err) }
	for _, c := range []struct {
		name      string
		retryable func(error) bool
		err       error
		retried   bool
	}{
		{"default retries a lock timeout", nil, pgErr(pgerrcode.LockNotAvailable), true},
		{"default retries a deadlock", nil, pgErr(pgerrcode.DeadlockDetected), true},
		{"default does not retry a serialization failure", nil, pgErr(pgerrcode.SerializationFailure), false},
		{"default does not retry other errors", nil, pgErr(pgerrcode.UniqueViolation), false},
		{"a predicate adds serialization failures", custom, pgErr(pgerrcode.SerializationFailure), true},
		{"a predicate still refuses other errors", custom, errors.New("boom"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			err := fast(Retry{Retryable: c.retryable}).Do(context.Background(), func(context.Context) error {
				calls++
				if calls == 1 {
					return c.err
				}
				return nil
			})
			if c.retried && (err != nil || calls != 2) {
				t.Fatalf("want one retry and success, got %d calls, %v", calls, err)
			}
			if !c.retried && (!errors.Is(err, c.err) || calls != 1) {
				t.Fatalf("want the first error back unretried, got %d calls, %v", calls, err)
			}
		})
	}
}

func TestRetryBounds(t *testing.T) {
	t.Parallel()
	lock := pgErr(pgerrcode.LockNotAvailable)

	t.Run("max attempts", func(t *testing.T) {
		t.Parallel()
		calls, notified := 0, 0
		err := fast(Retry{MaxAttempts: 4, Deadline: time.Hour, OnRetry: func(attempt int, _ time.Duration, err error) {
			notified++
			if attempt != notified || !errors.Is(err, lock) {
				t.Errorf("OnRetry(%d, %v) as call %d", attempt, err, notified)
			}
		}}).Do(context.Background(), func(context.Context) error { calls++; return lock })
		var lte *LockTimeoutError
		if !errors.As(err, &lte) || lte.Attempts != 4 || calls != 4 || notified != 3 || !IsLockTimeout(err) {
			t.Fatalf("want a LockTimeoutError after 4 attempts (3 retries told), got %v after %d calls, %d told", err, calls, notified)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		err := fast(Retry{Deadline: 50 * time.Millisecond}).Do(context.Background(), func(context.Context) error { return lock })
		var lte *LockTimeoutError
		if !errors.As(err, &lte) || lte.Elapsed < 50*time.Millisecond || lte.Attempts < 2 {
			t.Fatalf("want a LockTimeoutError after 50ms, got %v", err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("gave up after %s, deadline 50ms", took)
		}
	})

	t.Run("ctx ends", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		err := fast(Retry{}).Do(ctx, func(context.Context) error {
			calls++
			if calls == 2 {
				cancel()
			}
			return lock
		})
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "code 55P03") || calls != 2 {
			t.Fatalf("want context.Canceled naming the last error after 2 calls, got %v after %d", err, calls)
		}
	})
}
