package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/onlinepg/online/internal/pg"
)

// The connection budget. A test binary shares its server with the other test
// binaries `go test ./...` runs at once (-p, GOMAXPROCS by default) and with
// whatever else uses the server, and a test opens several connections of its
// own (the engine's, the backfill's workers, the writers it plays the
// application with). So that no test dies of "too many clients", each test
// database holds a slot of the binary's budget until it is dropped, and a
// test that finds no slot free waits in NewDB for one.
//
// The budget is worked out once per binary, from the server's
// max_connections less its reserved connections and the connections in use
// at that moment, divided among the binaries that may run at once, in slots
// of ConnsPerTest connections. ONLINE_TEST_CONNS sets the binary's share of
// connections outright; ONLINE_TEST_BINARIES the number of binaries.
const (
	// ConnsPerTest is how many connections one test database is budgeted
	// for: the engine, four backfill workers, the governor, and a few
	// application connections.
	ConnsPerTest = 12
	// connectPatience is how long a test's connection waits for the server
	// to have a connection free before the test fails.
	connectPatience = 2 * time.Minute
	// slotPatience is how long a test waits for a slot while none is
	// given back before it goes ahead over the budget. The wait can be a
	// deadlock: a test that holds a slot and runs parallel subtests keeps
	// it until they end, and they cannot start while the tests waiting
	// for a slot hold every one of go test's -parallel places.
	slotPatience = 10 * time.Second
)

// slotsFor is the number of test databases a binary may hold at once, given
// the server's max_connections, its reserved connections, the connections
// in use and the number of binaries sharing it. There is always one slot:
// a test that cannot get one would never run.
func slotsFor(maxConns, reserved, inUse, binaries int) int {
	free := maxConns - reserved - inUse
	share := free / max(binaries, 1)
	return max(1, share/ConnsPerTest)
}

// slots are the binary's test database slots.
type slots struct {
	mu      sync.Mutex
	cond    *sync.Cond
	size    int
	free    int            // below zero while tests run over the budget
	holders map[string]int // test name → slots it holds
	given   time.Time      // when a slot was last given back
}

var (
	budgetOnce sync.Once
	budget     *slots
	budgetErr  error
)

func newSlots(n int) *slots {
	s := &slots{size: n, free: n, holders: map[string]int{}, given: time.Now()}
	s.cond = sync.NewCond(&s.mu)
	// Waiters look at the clock now and then (slotPatience), not only
	// when a slot is given back. The ticker lives as long as the binary.
	go func() {
		for range time.Tick(time.Second) {
			s.cond.Broadcast()
		}
	}()
	return s
}

// sizeBudget reads the server's numbers and sizes the binary's budget.
func sizeBudget(ctx context.Context, admin *pgx.Conn) (int, error) {
	if v := os.Getenv("ONLINE_TEST_CONNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("ONLINE_TEST_CONNS=%q: want a positive number of connections", v)
		}
		return max(1, n/ConnsPerTest), nil
	}
	binaries := runtime.GOMAXPROCS(0) // go test's default -p
	if v := os.Getenv("ONLINE_TEST_BINARIES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("ONLINE_TEST_BINARIES=%q: want a positive number", v)
		}
		binaries = n
	}
	var maxConns, reserved, inUse int
	err := admin.QueryRow(ctx, `SELECT current_setting('max_connections')::int,
		current_setting('superuser_reserved_connections')::int,
		(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int`).Scan(&maxConns, &reserved, &inUse)
	if err != nil {
		return 0, fmt.Errorf("read max_connections: %w", err)
	}
	return slotsFor(maxConns, reserved, inUse, binaries), nil
}

// heldByAncestor says whether t or a test it runs under holds a slot: its
// databases share that slot, since the parent's slot is not released
// before its subtests end and waiting for another could wait forever.
func (s *slots) heldByAncestor(name string) bool {
	for h := range s.holders {
		if name == h || strings.HasPrefix(name, h+"/") {
			return true
		}
	}
	return false
}

// acquire takes a slot for t, waiting for one, and returns the function that
// gives it back (nil when t shares an ancestor's slot).
func (s *slots) acquire(t testing.TB) func() {
	name := t.Name()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.heldByAncestor(name) {
		return nil
	}
	began := time.Now()
	if s.free <= 0 {
		t.Logf("pgtest: waiting for one of %d test database slots (connection budget)", s.size)
	}
	for s.free <= 0 {
		if time.Since(began) >= slotPatience && time.Since(s.given) >= slotPatience {
			t.Logf("pgtest: no test database slot given back in %s: going ahead over the budget of %d", slotPatience, s.size)
			break
		}
		s.cond.Wait()
	}
	s.free--
	s.holders[name]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.holders[name]--; s.holders[name] == 0 {
			delete(s.holders, name)
		}
		s.free++
		s.given = time.Now()
		s.cond.Broadcast()
	}
}

// serverBusy reports whether err is the server turning a connection away for
// want of a free one, which goes away once other sessions end.
func serverBusy(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == pgerrcode.TooManyConnections || pe.Code == pgerrcode.CannotConnectNow)
}

// connect opens a connection, waiting while the server has none free (its
// own, other binaries' or other users' sessions fill it) instead of failing.
func connect(ctx context.Context, connURL string) (*pgx.Conn, error) {
	deadline := time.Now().Add(connectPatience)
	wait := 50 * time.Millisecond
	for {
		conn, err := pg.Connect(ctx, connURL, pg.Options{ApplicationName: "online-test"})
		if err == nil || !serverBusy(err) || time.Now().After(deadline) {
			return conn, err
		}
		if err := pg.Sleep(ctx, wait); err != nil {
			return nil, err
		}
		wait = min(2*wait, time.Second)
	}
}
