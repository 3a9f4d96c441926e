package phases_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/onlinepg/online/backfill"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/phases"
)

// busyNeighbour runs pgbench (TPC-B, 4 clients) on a database of its own on
// the same server until the test ends, and returns a function counting the
// transactions it committed so far.
func busyNeighbour(t testing.TB) func() int64 {
	t.Helper()
	bin, err := exec.LookPath("pgbench")
	if err != nil {
		t.Skip("pgbench is not installed: the neighbour database needs it")
	}
	url := pgtest.NewDB(t)
	if out, err := exec.Command(bin, "-i", "-s", "1", "-q", url).CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-n", "-c", "4", "-j", "2", "-T", "600", url)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	conn := pgtest.Connect(t, url)
	return func() int64 {
		var n int64
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pgbench_history").Scan(&n); err != nil {
			t.Fatalf("count the neighbour's transactions: %v\n%s", err, out.String())
		}
		return n
	}
}

// TestBackfillIgnoresBusyNeighbour: another database of the server takes
// writes all along (pgbench), while the migrated database's application is
// connected but idle. The backfill must not slow down for the neighbour: no
// probe of the application's rate, no baseline, a duty cycle of 1 all
// through. With the server-wide transaction counter it yielded to pgbench.
func TestBackfillIgnoresBusyNeighbour(t *testing.T) {
	t.Parallel()
	const rows = 300000
	e := newEnv(t, accountsTable, accountsRows(rows))
	if v := e.rows(e.db, "SELECT current_setting('server_version_num')::int >= 150000"); v[0] != "true" {
		t.Skip("PostgreSQL 14 has no per-database count to go by: the backfill yields to the server's writes")
	}
	neighbourTxns := busyNeighbour(t)
	// The neighbour is under way before the backfill starts.
	for deadline := time.Now().Add(30 * time.Second); neighbourTxns() < 50; {
		if time.Now().After(deadline) {
			t.Fatal("pgbench made no progress on the neighbour database")
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := neighbourTxns()
	var logs syncBuffer
	var minDuty atomic.Value
	minDuty.Store(1.0)
	eng := e.engine(func(c *phases.Config) {
		c.Log = zerolog.New(&logs).Level(zerolog.DebugLevel)
		c.BackfillBatchTime = 20 * time.Millisecond
		c.BackfillWorkers = 2
		c.BackfillYield = 0.8
		// At most 100k rows a second: the backfill lasts at least 3 s
		// however fast the machine, several of the governor's periods.
		c.BackfillRate = 100000
		c.OnProgress = func(p backfill.Progress) {
			if p.Duty > 0 && p.Duty < minDuty.Load().(float64) {
				minDuty.Store(p.Duty)
			}
		}
	})
	began := time.Now()
	if _, err := eng.Start(ctx(), parse(t, "lower", lowerEmail)); err != nil {
		t.Fatalf("start: %s", pg.Explain(err))
	}
	took := time.Since(began)
	during := neighbourTxns() - before
	log := logs.String()
	if !strings.Contains(log, "backfill governor watches") {
		t.Fatalf("the governor never ran (the test proves nothing):\n%s", log)
	}
	if during < 20 {
		t.Fatalf("the neighbour committed %d transactions during the backfill: not busy", during)
	}
	for _, msg := range []string{"backfill yields to the application", "backfill duty cycle"} {
		if strings.Contains(log, msg) {
			t.Errorf("the backfill took the neighbour's writes for its application (%q):\n%s", msg, grepLines(log, msg))
		}
	}
	// A probe may be taken for the database's own background (on a loaded
	// machine a few transactions a second of its own sessions' statistics
	// arrive late), but never for a rate like the neighbour's: the server's
	// counter saw the neighbour's whole rate.
	neighbourRate := float64(during) / time.Since(began).Seconds()
	for _, l := range strings.Split(grepLines(log, "backfill held to measure"), "\n") {
		var probe struct {
			AppRate float64 `json:"app_rate"`
		}
		if l == "" {
			continue
		}
		if err := json.Unmarshal([]byte(l), &probe); err != nil {
			t.Fatalf("read the log line %q: %v", l, err)
		}
		if probe.AppRate >= neighbourRate/2 {
			t.Errorf("the backfill held to measure an application writing %.0f/s, the neighbour's rate (%.0f/s), in a database where nothing writes:\n%s",
				probe.AppRate, neighbourRate, l)
		}
	}
	if d := minDuty.Load().(float64); d < 1 {
		t.Errorf("the backfill slowed to a duty cycle of %.2f for the neighbour", d)
	}
	t.Logf("backfill of %d rows took %s; the neighbour committed %d transactions meanwhile (%.0f/s)", rows, took.Round(time.Millisecond), during, float64(during)/took.Seconds())
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestZeroConfigYields: a Go program that leaves BackfillYield out gets the
// CLI's default, a backfill that yields to the application; only
// phases.Off turns the governor off. The zero value used to mean off.
func TestZeroConfigYields(t *testing.T) {
	t.Parallel()
	// Over the governor's 16 MB; e.db is the application's session.
	e := newEnv(t, accountsTable, accountsRows(300000))
	var logs syncBuffer
	withLog := func(c *phases.Config) { c.Log = zerolog.New(&logs).Level(zerolog.DebugLevel) }
	for _, tc := range []struct {
		name     string
		yield    float64
		governed bool
	}{
		{"zero: the default", 0, true},
		{"Off", phases.Off, false},
	} {
		logs.mu.Lock()
		logs.b.Reset()
		logs.mu.Unlock()
		eng := e.engine(withLog, func(c *phases.Config) { c.BackfillYield = tc.yield })
		if _, err := eng.Start(ctx(), parse(t, "lower", lowerEmail)); err != nil {
			t.Fatalf("%s: start: %s", tc.name, pg.Explain(err))
		}
		if got := strings.Contains(logs.String(), "backfill governor watches"); got != tc.governed {
			t.Errorf("%s: governor %v, want %v:\n%s", tc.name, got, tc.governed, logs.String())
		}
		e.rollback()
	}
}
