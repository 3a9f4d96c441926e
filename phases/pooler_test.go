package phases_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/state"
)

// TestRefusesPooler: online through pgbouncer is refused before it touches
// anything, with the advice to connect directly: whether pgbouncer refuses
// online's startup settings, or drops them silently
// (ignore_startup_parameters), in transaction and in session mode.
func TestRefusesPooler(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable)
	db := pgtest.DBName(t, e.url)
	cases := []pgtest.PgBouncerOptions{
		{},
		{IgnoreStartupParameters: "lock_timeout, tcp_keepalives_idle, tcp_keepalives_interval, tcp_keepalives_count"},
		{PoolMode: "session", IgnoreStartupParameters: "lock_timeout, tcp_keepalives_idle, tcp_keepalives_interval, tcp_keepalives_count"},
	}
	for _, o := range cases {
		b := pgtest.StartPgBouncer(t, o)
		_, err := phases.Open(ctx(), phases.Config{URL: b.URL(db)})
		if !errors.Is(err, phases.ErrPooler) {
			t.Fatalf("pool_mode %q, ignore_startup_parameters %q: %v, want ErrPooler", o.PoolMode, o.IgnoreStartupParameters, err)
		}
		// With libpq's default sslmode=prefer, pgbouncer (no TLS here)
		// declines TLS on the way, then refuses the setting: what a person
		// reads must be about the pooler, not about TLS.
		if o.IgnoreStartupParameters == "" {
			_, err := phases.Open(ctx(), phases.Config{URL: strings.TrimSuffix(b.URL(db), "?sslmode=disable")})
			msg := pg.Explain(err)
			if !errors.Is(err, phases.ErrPooler) || strings.Contains(msg, "TLS failed") || !strings.Contains(msg, "HINT: a connection pooler") {
				t.Errorf("through pgbouncer with sslmode=prefer: want ErrPooler with the pooler's hint, got:\n%s", msg)
			}
		}
	}
	var n int
	if err := e.db.QueryRow(ctx(), "SELECT count(*) FROM pg_namespace WHERE nspname = 'online'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the state schema was created through the pooler: %d %v", n, err)
	}
	// A direct connection is a session: accepted.
	direct, err := phases.Open(ctx(), phases.Config{URL: e.url})
	if err != nil {
		t.Fatalf("direct: %v", err)
	}
	defer direct.Close(ctx())
	// Over TCP, the server probes a silent client after 10s, so that the
	// lock of a vanished operator machine is released in seconds, not hours.
	var idle, interval, count string
	var tcp bool
	if err := direct.Conn().QueryRow(ctx(), "SELECT current_setting('tcp_keepalives_idle'), current_setting('tcp_keepalives_interval'), current_setting('tcp_keepalives_count'), inet_client_addr() IS NOT NULL").Scan(&idle, &interval, &count, &tcp); err != nil {
		t.Fatal(err)
	}
	if tcp && (idle != "10" || interval != "5" || count != "3") {
		t.Fatalf("server-side keepalives: idle %s interval %s count %s, want 10 5 3", idle, interval, count)
	}
}

// TestLiveLockHolderStillBusy: the wait for a vanished holder does not let
// a second process in while the first is alive.
func TestLiveLockHolderStillBusy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersTable)
	first := e.engine()
	if err := first.Init(ctx()); err != nil {
		t.Fatal(err)
	}
	unlock, err := (state.Store{Schema: "online"}).Lock(ctx(), first.Conn(), "public")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock(ctx())
	second := e.engine(func(c *phases.Config) { c.LockWait = 300 * time.Millisecond })
	if _, err := second.Rollback(ctx()); !errors.Is(err, state.ErrBusy) {
		t.Fatalf("second process: %v, want ErrBusy", err)
	}
}
