package pgtest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
)

// The connection budget. A test binary shares its server with the other test
// binaries `go test ./...` runs at once and with whatever else uses the
// server, and a test opens several connections of its own (the engine's, the
// backfill's workers, the writers it plays the application with). So that
// no test dies of "too many clients", NewDB waits, before it makes a
// database, until the server has room for a test: ConnsPerTest connections
// for each test this binary starts at that moment, over what the server
// keeps for superusers. It reads the room from the server each time
// (max_connections less the sessions in pg_stat_activity), so other
// binaries, other users and idle tests all count as they are.
//
// A budget of database slots, tried first, deadlocked: a test holding a
// slot while its parallel subtests wait for go test's -parallel places
// keeps the slot, and the tests waiting for one hold those places. Room on
// the server is given back by any test that ends or closes a connection,
// and a test waits at most ConnectPatience for it before it goes ahead.
//
// ONLINE_TEST_MAX_CONNECTIONS, when set, stands for the server's
// max_connections (a smaller number makes the tests behave as on a smaller
// server); ONLINE_TEST_PATIENCE for connectPatience.
const (
	// ConnsPerTest is the room one test needs: the engine, four backfill
	// workers, the governor, and a few application connections.
	ConnsPerTest = 12
	// connectPatience is how long a test waits for room on the server (and a
	// connection for a free slot) before it goes ahead (or fails).
	connectPatience = 2 * time.Minute
)

// room is the connections the server can still give to non-superusers.
func room(maxConns, reserved, inUse int) int {
	return maxConns - reserved - inUse
}

// starting counts this binary's tests between the look at the room and
// their database's creation: each needs its own ConnsPerTest.
var starting struct {
	sync.Mutex
	n int
}

func patience() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("ONLINE_TEST_PATIENCE")); err == nil && d > 0 {
		return d
	}
	return connectPatience
}

// serverRoom reads the room on the server now.
func serverRoom(ctx context.Context, admin *pgx.Conn) (int, error) {
	var maxConns, reserved, inUse int
	err := admin.QueryRow(ctx, `SELECT current_setting('max_connections')::int,
		current_setting('superuser_reserved_connections')::int,
		(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int`).Scan(&maxConns, &reserved, &inUse)
	if err != nil {
		return 0, fmt.Errorf("read max_connections: %w", err)
	}
	if v := os.Getenv("ONLINE_TEST_MAX_CONNECTIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("ONLINE_TEST_MAX_CONNECTIONS=%q: want a positive number", v)
		}
		maxConns = n
	}
	return room(maxConns, reserved, inUse), nil
}

// holders says who holds the server's connections: the sessions counted by
// database (with the test that made it, from its comment), application and
// state, the largest groups first. A test that
// waits for room names them, so that a run that fills the server can be
// traced to what filled it.
func holders(ctx context.Context, admin *pgx.Conn) string {
	var s string
	err := admin.QueryRow(ctx, `SELECT coalesce(string_agg(n || ' ' || what, ', ' ORDER BY n DESC, what), 'none')
		FROM (SELECT count(*) AS n, coalesce(a.datname, '-') || coalesce(' [' || shobj_description(a.datid, 'pg_database') || ']', '') ||
				' (' || coalesce(nullif(a.application_name, ''), '-') || ', ' || coalesce(a.state, '-') || ')' AS what
			FROM pg_stat_activity a WHERE a.backend_type = 'client backend' GROUP BY 2 ORDER BY 1 DESC LIMIT 12) s`).Scan(&s)
	if err != nil {
		return "unknown: " + err.Error()
	}
	return s
}

// waitForRoom waits until the server has room for one more test of this
// binary, or for patience, and returns the function to call once the test's
// database exists.
func waitForRoom(ctx context.Context, t testing.TB, admin *pgx.Conn) (started func(), err error) {
	starting.Lock()
	starting.n++
	ahead := starting.n
	starting.Unlock()
	started = func() {
		starting.Lock()
		starting.n--
		starting.Unlock()
	}
	began := time.Now()
	said := false
	for {
		free, err := serverRoom(ctx, admin)
		if err != nil {
			started()
			return nil, err
		}
		if free >= ahead*ConnsPerTest {
			return started, nil
		}
		if time.Since(began) >= patience() {
			t.Logf("pgtest: the server still has room for only %d connections after %s: going ahead; its sessions: %s", free, patience(), holders(ctx, admin))
			return started, nil
		}
		if !said {
			t.Logf("pgtest: waiting for room on the server: %d connections free, a test needs %d; its sessions: %s", free, ConnsPerTest, holders(ctx, admin))
			said = true
		}
		if err := pg.Sleep(ctx, 250*time.Millisecond); err != nil {
			started()
			return nil, err
		}
		starting.Lock()
		ahead = min(ahead, starting.n)
		starting.Unlock()
	}
}

// connect opens a connection, waiting while the server has none free (its
// own, other binaries' or other users' sessions fill it) instead of failing.
func connect(ctx context.Context, connURL string) (*pgx.Conn, error) {
	return ConnectOptions(ctx, connURL, pg.Options{ApplicationName: "online-test"})
}

// ConnectOptions is pg.Connect for tests: with opts (a version's
// search_path, an application name), and waiting for a free connection
// as long as a test waits for room.
func ConnectOptions(ctx context.Context, connURL string, opts pg.Options) (*pgx.Conn, error) {
	if opts.SlotWait == 0 {
		opts.SlotWait = patience()
	}
	return pg.Connect(ctx, connURL, opts)
}
