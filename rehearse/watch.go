package rehearse

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/onlinepg/online/internal/pg"
)

// watcher runs two sessions on the copy while migrations run: a probe that
// reads and takes a writer's lock on every table in turn, timing each, and a
// monitor that samples the locks online's sessions hold.
type watcher struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	held   map[string]string // relation -> strongest mode, since track
	wait   time.Duration
	waitOn string
	probes int
	monErr error
}

// lockRank orders table lock modes by strength.
var lockRank = map[string]int{
	"AccessShareLock": 1, "RowShareLock": 2, "RowExclusiveLock": 3, "ShareUpdateExclusiveLock": 4,
	"ShareLock": 5, "ShareRowExclusiveLock": 6, "ExclusiveLock": 7, "AccessExclusiveLock": 8,
}

func startWatch(ctx context.Context, url, schemaName, stateSchema string) (*watcher, error) {
	wctx, cancel := context.WithCancel(ctx)
	w := &watcher{cancel: cancel, held: map[string]string{}}
	probe, err := pg.Connect(ctx, url, pg.Options{ApplicationName: "online-rehearse-probe", StatementTimeout: 5 * time.Minute})
	if err != nil {
		cancel()
		return nil, err
	}
	mon, err := pg.Connect(ctx, url, pg.Options{ApplicationName: "online-rehearse-monitor"})
	if err != nil {
		cancel()
		pg.Close(ctx, probe)
		return nil, err
	}
	var tables []string
	rows, err := probe.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`, schemaName)
	if err == nil {
		tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		cancel()
		pg.Close(ctx, probe)
		pg.Close(ctx, mon)
		return nil, fmt.Errorf("list the tables of the copy: %w", err)
	}
	w.wg.Add(2)
	go func() {
		defer w.wg.Done()
		defer pg.Close(ctx, probe)
		w.probe(wctx, probe, schemaName, tables)
	}()
	go func() {
		defer w.wg.Done()
		defer pg.Close(ctx, mon)
		w.monitor(wctx, mon, stateSchema)
	}()
	return w, nil
}

// probe times, table after table, a one-row read and the lock an INSERT or
// UPDATE takes (ROW EXCLUSIVE, in a transaction rolled back at once): what
// an application would wait for behind online's statements.
func (w *watcher) probe(ctx context.Context, conn *pgx.Conn, schemaName string, tables []string) {
	gone := map[string]bool{}
	for ctx.Err() == nil {
		for _, t := range tables {
			if gone[t] || ctx.Err() != nil {
				continue
			}
			q := pg.Ident(schemaName, t)
			for _, sql := range []string{"SELECT 1 FROM " + q + " LIMIT 1", "BEGIN; LOCK TABLE " + q + " IN ROW EXCLUSIVE MODE; ROLLBACK"} {
				began := time.Now()
				_, err := conn.Exec(ctx, sql)
				took := time.Since(began)
				if ctx.Err() != nil {
					return
				}
				var pgErr *pgconn.PgError
				if err != nil {
					// A failed statement leaves the probe's transaction
					// aborted.
					_, _ = conn.Exec(ctx, "ROLLBACK")
				}
				if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
					gone[t] = true // dropped by complete
					break
				}
				w.mu.Lock()
				w.probes++
				if err == nil && took > w.wait {
					w.wait, w.waitOn = took, t
				}
				w.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// monitor samples, every 10 ms, the table locks of online's sessions in the
// copy (granted or awaited); those of its own state tables, which no
// application uses, are left out.
func (w *watcher) monitor(ctx context.Context, conn *pgx.Conn, stateSchema string) {
	const q = `
SELECT n.nspname || '.' || c.relname, l.mode
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND a.application_name LIKE 'online%' AND a.application_name NOT LIKE 'online-rehearse%'
  AND c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', $1)`
	for ctx.Err() == nil {
		rows, err := conn.Query(ctx, q, stateSchema)
		if err == nil {
			var rel, mode string
			_, err = pgx.ForEachRow(rows, []any{&rel, &mode}, func() error {
				w.mu.Lock()
				if lockRank[mode] > lockRank[w.held[rel]] {
					w.held[rel] = mode
				}
				w.mu.Unlock()
				return nil
			})
		}
		if err != nil && ctx.Err() == nil {
			w.mu.Lock()
			w.monErr = err
			w.mu.Unlock()
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// track starts a new lock record (one per migration).
func (w *watcher) track() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.held = map[string]string{}
}

// locks returns the locks seen since track, strongest first.
func (w *watcher) locks() []Lock {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := []Lock{}
	for _, rel := range slices.Sorted(maps.Keys(w.held)) {
		out = append(out, Lock{Relation: rel, Mode: w.held[rel]})
	}
	slices.SortStableFunc(out, func(a, b Lock) int { return lockRank[b.Mode] - lockRank[a.Mode] })
	return out
}

func (w *watcher) longest() (time.Duration, string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wait, w.waitOn, w.probes
}

func (w *watcher) stop() {
	w.cancel()
	w.wg.Wait()
}
