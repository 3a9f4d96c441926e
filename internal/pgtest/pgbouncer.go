package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PgBouncer is a pgbouncer a test started for itself, in front of the test
// server, on a free port of 127.0.0.1.
type PgBouncer struct {
	Port int
	User string // the PostgreSQL user it connects as
	// Server is "host=... port=..." of the PostgreSQL server behind it, for
	// [databases] lines.
	Server string
	Log    *strings.Builder
}

// PgBouncerOptions shape the pgbouncer.ini a test writes.
type PgBouncerOptions struct {
	// PoolMode is session, transaction or statement; default transaction.
	PoolMode string
	// Databases are extra lines of the [databases] section, before the
	// catch-all "* =" line that forwards any database name to the server.
	Databases []string
	// IgnoreStartupParameters is pgbouncer's setting of that name.
	IgnoreStartupParameters string
	// PoolSize is default_pool_size; default 2, so that transactions of
	// several clients share server connections.
	PoolSize int
}

// PgBouncerBinary finds pgbouncer on PATH or where Debian installs it.
func PgBouncerBinary() (string, bool) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, true
	}
	for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/local/bin/pgbouncer"} {
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	return "", false
}

// StartPgBouncer starts pgbouncer with a config written to a temporary
// directory and stops it at cleanup. It skips the test only when no
// pgbouncer binary is installed (.ci/run installs Debian's). pgbouncer
// refuses to run as root, so as root it runs as postgres or nobody.
func StartPgBouncer(t testing.TB, o PgBouncerOptions) *PgBouncer {
	t.Helper()
	bin, ok := PgBouncerBinary()
	if !ok {
		t.Skip("pgbouncer is not installed (apt-get install pgbouncer): skipping the pooler test")
	}
	srv, err := pgx.ParseConfig(ServerURL())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if o.PoolMode == "" {
		o.PoolMode = "transaction"
	}
	if o.PoolSize == 0 {
		o.PoolSize = 2
	}
	dir, err := os.MkdirTemp("", "online-pgbouncer-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	port := freePort(t)
	server := fmt.Sprintf("host=%s port=%d", srv.Host, srv.Port)
	if strings.HasPrefix(srv.Host, "/") {
		server = fmt.Sprintf("host=127.0.0.1 port=%d", srv.Port)
	}
	var ini strings.Builder
	ini.WriteString("[databases]\n")
	for _, l := range o.Databases {
		ini.WriteString(l + "\n")
	}
	fmt.Fprintf(&ini, "* = %s\n\n[pgbouncer]\n", server)
	fmt.Fprintf(&ini, "listen_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir =\n", port)
	fmt.Fprintf(&ini, "auth_type = trust\nauth_file = %s\n", filepath.Join(dir, "users.txt"))
	fmt.Fprintf(&ini, "pool_mode = %s\ndefault_pool_size = %d\nmax_client_conn = 200\n", o.PoolMode, o.PoolSize)
	if o.IgnoreStartupParameters != "" {
		fmt.Fprintf(&ini, "ignore_startup_parameters = %s\n", o.IgnoreStartupParameters)
	}
	fmt.Fprintf(&ini, "admin_users = %s\nserver_login_retry = 1\n", srv.User)
	users := fmt.Sprintf("%q \"\"\n", srv.User)
	cfgPath := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(cfgPath, []byte(ini.String()), 0o644); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.txt"), []byte(users), 0o644); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	cmd := exec.Command(bin, cfgPath)
	if os.Geteuid() == 0 {
		uid, gid, err := unprivileged()
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		_ = os.Chown(dir, int(uid), int(gid))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	}
	b := &PgBouncer{Port: port, User: srv.User, Server: server, Log: &strings.Builder{}}
	cmd.Stdout, cmd.Stderr = b.Log, b.Log
	if err := cmd.Start(); err != nil {
		t.Fatalf("pgtest: start pgbouncer: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return b
		}
		select {
		case <-exited:
			t.Fatalf("pgtest: pgbouncer exited at start:\n%s\nconfig:\n%s", b.Log, ini.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgtest: pgbouncer does not listen on %d: %v\n%s", port, err, b.Log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL is the connection string of database db through the pooler.
func (b *PgBouncer) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", b.User, b.Port, db)
}

// DBName is the database name of a connection string made by NewDB.
func DBName(t testing.TB, connURL string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(connURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return cfg.Database
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func unprivileged() (uint32, uint32, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 == nil && err2 == nil {
			return uint32(uid), uint32(gid), nil
		}
	}
	return 0, 0, fmt.Errorf("running as root and pgbouncer refuses to: no postgres or nobody user to run it as")
}
