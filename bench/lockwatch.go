package bench

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/onlinepg/online/internal/pg"
)

// lockWatchEvery is how often the lock watch looks at pg_locks. Its
// figures are that precise; more often would add load to the very machine
// being measured.
const lockWatchEvery = 100 * time.Millisecond

// appBlockers names the blocker when it is another application session:
// TPC-B's own row-lock contention, there with or without a migration, or a
// session queued ahead in the same wait.
const appBlockers = "application sessions"

// goneBlocker names a blocker that had let go by the time it was looked up.
const goneBlocker = "(gone when looked up)"

// LockWait is the longest wait for a lock that an application session was
// seen in, by blocker and kind of lock.
type LockWait struct {
	// Blocker is the blocking session's application_name, or appBlockers.
	Blocker string `json:"blocker"`
	// Lock is the lock the application waited for: its type, relation and
	// mode ("transactionid (ShareLock)" is a row held by Blocker's
	// transaction).
	Lock string `json:"lock"`
	// Statement is what Blocker was running when the longest wait was
	// seen (its last statement, when idle in its transaction).
	Statement string `json:"statement"`
	Longest   Millis `json:"longest_ms"`
	// Samples is how many looks saw an application session in such a wait.
	Samples int `json:"samples"`
}

// lockWatch samples, while the workloads run, which application sessions
// wait for a lock, for how long (pg_locks.waitstart, PostgreSQL 14+) and
// behind whom. A stall in the figures is then either a lock wait that
// shows here, or the machine being busy: on a shared machine the
// difference matters.
type lockWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	waits map[string]*LockWait
}

const lockWatchQuery = `SELECT extract(epoch FROM clock_timestamp() - l.waitstart)::float8 * 1000,
	l.locktype || coalesce(' on ' || l.relation::regclass::text, '') || ' (' || l.mode || ')',
	coalesce(b.application_name, ''), coalesce(left(regexp_replace(b.query, '\s+', ' ', 'g'), 200), '')
FROM pg_locks AS l
JOIN pg_stat_activity AS a ON a.pid = l.pid
LEFT JOIN pg_stat_activity AS b ON b.pid = (pg_blocking_pids(a.pid))[1]
WHERE NOT l.granted AND l.waitstart IS NOT NULL AND a.datname = current_database()
	AND a.application_name IN ('online-bench-old', 'online-bench-new')`

// startLockWatch starts watching the database at dbURL. It returns nil,
// and the run goes on without it, when the server is older than 14 or the
// watch cannot connect.
func startLockWatch(ctx context.Context, dbURL string, log zerolog.Logger) *lockWatch {
	conn, err := pg.Connect(ctx, dbURL, pg.Options{ApplicationName: "online-bench-watch"})
	if err != nil {
		log.Debug().Err(err).Msg("lock watch: cannot connect; going on without it")
		return nil
	}
	var version int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil || version < 140000 {
		log.Debug().Err(err).Int("server_version_num", version).Msg("lock watch needs pg_locks.waitstart (PostgreSQL 14+); going on without it")
		pg.Close(ctx, conn)
		return nil
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &lockWatch{cancel: cancel, done: make(chan struct{}), waits: map[string]*LockWait{}}
	go w.loop(wctx, conn, log)
	return w
}

func (w *lockWatch) loop(ctx context.Context, conn *pgx.Conn, log zerolog.Logger) {
	defer close(w.done)
	defer pg.Close(ctx, conn)
	t := time.NewTicker(lockWatchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.sample(ctx, conn); err != nil {
			if ctx.Err() == nil {
				log.Debug().Err(err).Msg("lock watch stopped")
			}
			return
		}
	}
}

func (w *lockWatch) sample(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, lockWatchQuery)
	if err != nil {
		return err
	}
	type seen struct {
		ms                       float64
		lock, blocker, statement string
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (seen, error) {
		var s seen
		err := r.Scan(&s.ms, &s.lock, &s.blocker, &s.statement)
		return s, err
	})
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	counted := map[string]bool{}
	for _, s := range got {
		switch s.blocker {
		case "online-bench-old", "online-bench-new":
			s.blocker, s.statement = appBlockers, ""
		case "":
			s.blocker = goneBlocker
		}
		key := s.blocker + "\x00" + s.lock
		lw := w.waits[key]
		if lw == nil {
			lw = &LockWait{Blocker: s.blocker, Lock: s.lock}
			w.waits[key] = lw
		}
		if d := Millis(time.Duration(s.ms * float64(time.Millisecond))); d > lw.Longest {
			lw.Longest, lw.Statement = d, s.statement
		}
		if !counted[key] {
			lw.Samples++
			counted[key] = true
		}
	}
	return nil
}

// stop ends the watch and returns the waits it saw, longest first. A nil
// watch returns nothing.
func (w *lockWatch) stop() []LockWait {
	if w == nil {
		return nil
	}
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []LockWait
	for _, lw := range w.waits {
		out = append(out, *lw)
	}
	slices.SortFunc(out, func(a, b LockWait) int {
		if c := cmp.Compare(b.Longest, a.Longest); c != 0 {
			return c
		}
		return strings.Compare(a.Blocker, b.Blocker)
	})
	return out
}
