package phases_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/onlinepg/online/backfill"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgserver"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/phases"
)

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// scratchServer starts a throwaway server of the test's own, stopped and
// removed when the test ends; the test skips where PostgreSQL's server
// binaries are not installed.
func scratchServer(t *testing.T, ctx context.Context) *pgserver.Server {
	t.Helper()
	bins, err := pgserver.FindBinaries("")
	if errors.Is(err, pgserver.ErrNotFound) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv, err := pgserver.Start(ctx, bins, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	return srv
}

// TestBackfillWaitsForReplica runs a backfill on a scratch primary with a
// streaming standby that applies WAL two seconds late: the backfill must
// pause while the standby lags more than --max-replica-lag, say so in its
// log and progress, and take the time the standby needs. The standby's WAL
// gap is logged, not asserted: with a 2s apply delay, a run this small
// stays within a few batches of it either way.
func TestBackfillWaitsForReplica(t *testing.T) {
	t.Parallel()
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	primary := scratchServer(t, c)
	standby, err := primary.StartStandby(c, "recovery_min_apply_delay = '2s'", "wal_receiver_status_interval = 1", "hot_standby = on")
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-in first-out: the standby stops before the primary.
	t.Cleanup(func() { _ = standby.Stop(context.Background()) })

	// Paced to 20,000 rows/s, the backfill would take 1.5s: all of it
	// inside the standby's 2s delay, were it not held back.
	const rows = 30000
	db := pgtest.Connect(t, primary.URL)
	pgtest.Exec(t, db, accountsTable, accountsRows(rows))
	waitStreaming := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := db.QueryRow(c, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(waitStreaming) {
			t.Fatal("the standby never streamed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var startLSN string
	if err := db.QueryRow(c, "SELECT pg_current_wal_lsn()::text").Scan(&startLSN); err != nil {
		t.Fatal(err)
	}

	// Watch the standby's gap while the backfill runs.
	var maxGap float64
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		w := pgtest.Connect(t, primary.URL)
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var gap *float64
			if err := w.QueryRow(c, "SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn))::float8 FROM pg_stat_replication").Scan(&gap); err == nil && gap != nil {
				maxGap = max(maxGap, *gap)
			}
		}
	}()

	var logs syncBuffer
	var lagSeen time.Duration
	var mu sync.Mutex
	eng, err := phases.Open(c, phases.Config{URL: primary.URL, MaxReplicaLag: 300 * time.Millisecond, BackfillWorkers: 1, BackfillRate: 20000,
		BackfillBatchTime: 50 * time.Millisecond, Log: zerolog.New(&logs).With().Timestamp().Logger(),
		OnProgress: func(p backfill.Progress) {
			mu.Lock()
			lagSeen = max(lagSeen, p.ReplicaLag)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	began := time.Now()
	res, err := eng.Start(c, parse(t, "lower", lowerEmail))
	close(stopWatch)
	<-watched
	if err != nil {
		t.Fatalf("start: %s", pg.Explain(err))
	}
	var wal float64
	if err := db.QueryRow(c, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::float8", startLSN).Scan(&wal); err != nil {
		t.Fatal(err)
	}
	pauses := strings.Count(logs.String(), `"event":"backfill_replica_paused"`)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("start took %s (backfill %s), %d pauses for the standby, most lag reported %s; standby gap at most %.0f of %.0f WAL bytes",
		time.Since(began).Round(time.Millisecond), res.Backfill.Round(time.Millisecond), pauses, lagSeen, maxGap, wal)
	if pauses == 0 || lagSeen < 300*time.Millisecond {
		t.Fatalf("the backfill never paused for the standby (pauses %d, lag reported %s)\n%s", pauses, lagSeen, logs.String())
	}
	// Paced at 20,000 rows/s the walk alone takes 1.5s; each pause waits
	// out the standby's 2s delay.
	if res.Backfill < rows/20000*time.Second+2*time.Second {
		t.Fatalf("the backfill took %s: it did not wait for the standby\n%s", res.Backfill, replicaEvents(logs.String()))
	}
	pgtest.Exec(t, db, "SET search_path TO public_lower")
	var bad int
	if err := db.QueryRow(c, "SELECT count(*) FROM accounts WHERE email <> lower('User' || id || '@Example.COM')").Scan(&bad); err != nil || bad != 0 {
		t.Fatalf("%d rows wrong through the new version (%v)", bad, err)
	}

	// A role that may not read the standbys' positions sees a walsender
	// with no details: the check must count it as hidden (and warn), not
	// as no standby at all.
	if streaming, hidden, err := phases.Standbys(c, db); err != nil || streaming != 1 || hidden != 0 {
		t.Fatalf("as a superuser: %d streaming, %d hidden (%v); want 1 and 0", streaming, hidden, err)
	}
	pgtest.Exec(t, db, "CREATE ROLE online_plain LOGIN")
	u, err := url.Parse(primary.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("online_plain")
	plain := pgtest.Connect(t, u.String())
	if streaming, hidden, err := phases.Standbys(c, plain); err != nil || streaming != 0 || hidden != 1 {
		t.Fatalf("as a role without pg_read_all_stats: %d streaming, %d hidden (%v); want 0 and 1", streaming, hidden, err)
	}
}

// replicaEvents keeps the log lines about standbys and backfill phases.
func replicaEvents(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "replica") || strings.Contains(l, `"phase"`) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
