package pgserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/onlinepg/online/internal/pg"
)

// binaries returns this machine's server binaries, or skips the test when
// PostgreSQL is not installed: that is the only reason to skip.
func binaries(t *testing.T) Binaries {
	t.Helper()
	b, err := FindBinaries("")
	if errors.Is(err, ErrNotFound) {
		t.Skipf("no PostgreSQL server binaries on this machine: %v", err)
	}
	if err != nil {
		t.Fatalf("FindBinaries: %v", err)
	}
	return b
}

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
}

func TestFindBinaries(t *testing.T) {
	b := binaries(t)
	for name, p := range map[string]string{"initdb": b.InitDB, "pg_ctl": b.PGCtl, "postgres": b.Postgres} {
		if filepath.Dir(p) != b.Dir || filepath.Base(p) != name {
			t.Errorf("%s = %q, want it in %q", name, p, b.Dir)
		}
		if !isExecutable(p) {
			t.Errorf("%s = %q is not executable", name, p)
		}
	}
	if b.Version < 10 {
		t.Errorf("Version = %d, want a major version >= 10", b.Version)
	}
	t.Logf("found PostgreSQL %d in %s", b.Version, b.Dir)

	// Found through PATH, the directory is the real one behind any symlink.
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			if _, err := binariesIn(filepath.Dir(real)); err == nil && b.Dir != filepath.Dir(real) {
				t.Errorf("Dir = %q, want %q (where initdb on PATH really is)", b.Dir, filepath.Dir(real))
			}
		}
	}

	// An explicit directory is used as is.
	again, err := FindBinaries(b.Dir)
	if err != nil {
		t.Fatalf("FindBinaries(%q): %v", b.Dir, err)
	}
	if again != b {
		t.Errorf("FindBinaries(%q) = %+v, want %+v", b.Dir, again, b)
	}
}

func TestFindBinariesBadDir(t *testing.T) {
	for _, tc := range []struct{ name, dir, want string }{
		{"missing", filepath.Join(t.TempDir(), "nope"), "no such directory"},
		{"empty", t.TempDir(), "no executable initdb, pg_ctl, postgres"},
		{"file", filepath.Join(t.TempDir(), "f"), "not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "file" {
				if err := os.WriteFile(tc.dir, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := FindBinaries(tc.dir)
			if err == nil {
				t.Fatalf("FindBinaries(%q) succeeded", tc.dir)
			}
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("error %v does not wrap ErrNotFound", err)
			}
			if !strings.Contains(err.Error(), tc.dir) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q should name %q and say %q", err, tc.dir, tc.want)
			}
		})
	}
}

func TestDistroDirsNewestFirst(t *testing.T) {
	got := []float64{
		dirVersion("/usr/lib/postgresql/9.6/bin"),
		dirVersion("/usr/lib/postgresql/15/bin"),
		dirVersion("/usr/pgsql-17/bin"),
		dirVersion("/usr/lib/postgresql/odd/bin"),
	}
	want := []float64{9.6, 15, 17, -1}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("dirVersion #%d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestStartStop(t *testing.T) {
	b := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	began := time.Now()
	s, err := Start(ctx, b, testLogger(t))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("started PostgreSQL %d at %s in %s", s.Version, s.URL, time.Since(began).Round(time.Millisecond))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = s.Stop(context.Background())
		}
	})

	if fi, err := os.Stat(s.Dir); err != nil || !fi.IsDir() {
		t.Fatalf("server directory %q: %v", s.Dir, err)
	}
	if !strings.Contains(s.URL, "127.0.0.1:"+strconv.Itoa(s.Port)) {
		t.Errorf("URL %q does not name port %d", s.URL, s.Port)
	}

	conn, err := pg.Connect(ctx, s.URL, pg.Options{})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	var one int
	if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("select 1 = %d, %v", one, err)
	}
	if _, err := conn.Exec(ctx, "create table t (id bigint primary key, name text)"); err != nil {
		t.Fatalf("create table: %v", err)
	}
	if _, err := conn.Exec(ctx, "insert into t values (1, 'ä')"); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var enc, listen string
	if err := conn.QueryRow(ctx, "select pg_encoding_to_char(encoding) from pg_database where datname = current_database()").Scan(&enc); err != nil || enc != "UTF8" {
		t.Errorf("encoding = %q, %v; want UTF8", enc, err)
	}
	if err := conn.QueryRow(ctx, "show listen_addresses").Scan(&listen); err != nil || listen != "127.0.0.1" {
		t.Errorf("listen_addresses = %q, %v; want 127.0.0.1", listen, err)
	}
	conn.Close(ctx)

	if !Reachable(ctx, s.URL) {
		t.Errorf("Reachable(%q) = false for the running server", s.URL)
	}

	// A session still open must not hold up Stop (fast mode ends it).
	open, err := pg.Connect(ctx, s.URL, pg.Options{})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer open.Close(context.Background())

	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	stopped = true
	if _, err := os.Stat(s.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory %q still there after Stop (stat: %v)", s.Dir, err)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), time.Second); err == nil {
		c.Close()
		t.Errorf("port %d still answers after Stop", s.Port)
	}
	if Reachable(ctx, s.URL) {
		t.Errorf("Reachable(%q) = true after Stop", s.URL)
	}
	if err := s.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStopWithCancelledContext(t *testing.T) {
	b := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, b, testLogger(t))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	// As in a deferred Stop after Ctrl-C: the server must still go away.
	if err := s.Stop(done); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(s.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory %q still there after Stop (stat: %v)", s.Dir, err)
	}
	if Reachable(ctx, s.URL) {
		t.Errorf("server still reachable after Stop")
	}
}

func TestReachableClosedPort(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	began := time.Now()
	url := "postgres://postgres@127.0.0.1:" + strconv.Itoa(port) + "/postgres?sslmode=disable"
	if Reachable(ctx, url) {
		t.Errorf("Reachable(%q) = true for a closed port", url)
	}
	if took := time.Since(began); took > reachTimeout+time.Second {
		t.Errorf("Reachable took %s, want at most about %s", took, reachTimeout)
	}
	if err := Ping(ctx, url); err == nil {
		t.Errorf("Ping(%q) = nil for a closed port", url)
	}
}

// A server that cannot start must give an error that shows its log, and leave
// no directory behind.
func TestStartFailureShowsLogAndCleansUp(t *testing.T) {
	b := binaries(t)
	tmp := t.TempDir()
	// When root, the server's user must be able to reach the directory and
	// run the fake postgres in it.
	for _, d := range []string{filepath.Dir(tmp), tmp} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fake := filepath.Join(tmp, "postgres")
	script := "#!/bin/sh\necho 'FATAL:  simulated start failure' >&2\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	b.Postgres = fake
	t.Setenv("TMPDIR", tmp)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, b, testLogger(t))
	if err == nil {
		_ = s.Stop(ctx)
		t.Fatal("Start succeeded with a postgres that cannot start")
	}
	t.Logf("error as shown:\n%v", err)
	if !strings.Contains(err.Error(), "simulated start failure") {
		t.Errorf("error does not show the server log: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "online-pg-*"))
	if len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestStartBadInitDB(t *testing.T) {
	b := binaries(t)
	tmp := t.TempDir()
	for _, d := range []string{filepath.Dir(tmp), tmp} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("TMPDIR", tmp)
	b.InitDB = "/bin/false"
	_, err := Start(context.Background(), b, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "initdb") {
		t.Fatalf("Start with a failing initdb: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "online-pg-*"))
	if len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// When another process binds the chosen port before the server does, Start
// picks another one.
func TestStartRetriesTakenPort(t *testing.T) {
	b := binaries(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	calls := 0
	pickPort = func() (int, error) {
		calls++
		if calls == 1 {
			return takenPort, nil
		}
		return freePort()
	}
	t.Cleanup(func() { pickPort = freePort })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, b, testLogger(t))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer func() {
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()
	if s.Port == takenPort || calls != 2 {
		t.Errorf("port %d after %d picks; want a second pick other than the taken %d", s.Port, calls, takenPort)
	}
	if !Reachable(ctx, s.URL) {
		t.Errorf("server on the second port not reachable")
	}
}

// TestOtherVersions starts and stops a server with each directory listed in
// ONLINE_PG_BINDIRS (separated by the OS list separator), e.g. the bin
// directories printed by "scripts/pg-versions.sh bindir 17". Without the
// variable there is nothing to do.
func TestOtherVersions(t *testing.T) {
	dirs := filepath.SplitList(os.Getenv("ONLINE_PG_BINDIRS"))
	if len(dirs) == 0 {
		t.Skip("ONLINE_PG_BINDIRS not set; nothing to test (see scripts/pg-versions.sh bindir)")
	}
	for _, dir := range dirs {
		b, err := FindBinaries(dir)
		if err != nil {
			t.Errorf("FindBinaries: %v", err)
			continue
		}
		t.Run(fmt.Sprintf("pg%d", b.Version), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			began := time.Now()
			s, err := Start(ctx, b, zerolog.Nop())
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			t.Logf("PostgreSQL %d started in %s", b.Version, time.Since(began).Round(time.Millisecond))
			conn, err := pg.Connect(ctx, s.URL, pg.Options{})
			if err != nil {
				_ = s.Stop(ctx)
				t.Fatalf("connect: %v", err)
			}
			var major int
			err = conn.QueryRow(ctx, "select current_setting('server_version_num')::int / 10000").Scan(&major)
			conn.Close(ctx)
			if err != nil || major != b.Version {
				t.Errorf("server major = %d, %v; want %d", major, err, b.Version)
			}
			if err := s.Stop(ctx); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if _, err := os.Stat(s.Dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("directory %q still there after Stop", s.Dir)
			}
		})
	}
}

// As root, a TMPDIR the server's user cannot reach gives an error that says
// so, instead of initdb's bare "permission denied".
func TestStartUnreachableTempDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the server to another user")
	}
	b := binaries(t)
	tmp := t.TempDir() // 0700, owned by root
	t.Setenv("TMPDIR", tmp)
	_, err := Start(context.Background(), b, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "cannot enter") || !strings.Contains(err.Error(), "TMPDIR") {
		t.Fatalf("Start with an unreachable TMPDIR: %v", err)
	}
	t.Logf("error as shown: %v", err)
	left, _ := filepath.Glob(filepath.Join(tmp, "online-pg-*"))
	if len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
