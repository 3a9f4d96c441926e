package pg_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgtest"
)

// A full server turns new connections away with too_many_connections. A
// database's CONNECTION LIMIT raises the same error for an ordinary role, so
// the test makes one server "full" for its own role and database without
// touching the server's max_connections, which other tests share.
func TestConnectWaitsForAFreeSlot(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	// The admin session stays out of the limited database: its sessions
	// count toward the limit, superusers' included.
	admin := pgtest.Connect(t, pgtest.ServerURL())
	db := pgtest.DBName(t, url)
	role := "online_slot_" + db[len(db)-8:]
	pgtest.Exec(t, admin,
		fmt.Sprintf("CREATE ROLE %s LOGIN", pgx.Identifier{role}.Sanitize()),
		fmt.Sprintf("ALTER DATABASE %s CONNECTION LIMIT 1", pgx.Identifier{db}.Sanitize()))
	t.Cleanup(func() {
		_, _ = admin.Exec(ctx, fmt.Sprintf("DROP ROLE IF EXISTS %s", pgx.Identifier{role}.Sanitize()))
	})
	roleURL, err := asUser(url, role)
	if err != nil {
		t.Fatal(err)
	}

	held, err := pg.Connect(ctx, roleURL, pg.Options{})
	if err != nil {
		t.Fatalf("the first connection: %v", err)
	}

	// Told not to wait, Connect fails at once with the server's error.
	began := time.Now()
	_, err = pg.Connect(ctx, roleURL, pg.Options{SlotWait: -1})
	if !pg.ServerFull(err) {
		t.Fatalf("SlotWait -1 on a full database: got %v, want too_many_connections", err)
	}
	var ce *pg.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("the error is not a *pg.ConnectError: %T", err)
	}
	if time.Since(began) > 5*time.Second {
		t.Fatalf("SlotWait -1 waited %s", time.Since(began))
	}

	// By default it waits, and gets the slot once the holder leaves.
	release := 700 * time.Millisecond
	go func() {
		time.Sleep(release)
		pg.Close(ctx, held)
	}()
	began = time.Now()
	conn, err := pg.Connect(ctx, roleURL, pg.Options{})
	if err != nil {
		t.Fatalf("Connect did not wait for the freed slot: %v", err)
	}
	defer pg.Close(ctx, conn)
	if waited := time.Since(began); waited < release/2 {
		t.Fatalf("Connect returned after %s, before the slot was freed", waited)
	}
	var who string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil || who != role {
		t.Fatalf("connected as %q (%v), want %q", who, err, role)
	}

	// A bounded wait ends with the server's error, not a hang.
	began = time.Now()
	_, err = pg.Connect(ctx, roleURL, pg.Options{SlotWait: 300 * time.Millisecond})
	if !pg.ServerFull(err) {
		t.Fatalf("a full database after SlotWait: got %v, want too_many_connections", err)
	}
	if waited := time.Since(began); waited < 300*time.Millisecond || waited > 10*time.Second {
		t.Fatalf("SlotWait 300ms gave up after %s", waited)
	}
}

// asUser returns url connecting as user instead.
func asUser(url, user string) (string, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", user, cfg.Host, cfg.Port, cfg.Database), nil
}
