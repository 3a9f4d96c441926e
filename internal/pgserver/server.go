package pgserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/onlinepg/online/internal/pg"
)

const (
	// superuser is the role initdb creates; trust auth means no password.
	superuser = "postgres"
	// readyTimeout bounds the wait for the server to accept connections when
	// the caller's context has no earlier deadline.
	readyTimeout = 60 * time.Second
	// stopTimeout bounds a shutdown, whatever the caller's context says: a
	// server must not be left running because the context was cancelled.
	stopTimeout = 30 * time.Second
	// portAttempts is how often a start is retried on a fresh port when
	// another process took the chosen one between our probe and the bind.
	portAttempts = 3
	// maxSocketPath is below the sun_path limit (108 on Linux, 104 on the
	// BSDs) with room for the ".s.PGSQL.NNNNN" file name.
	maxSocketPath = 100
)

// Server is a running throwaway PostgreSQL server. Its data, socket and log
// all live under Dir, which Stop removes.
type Server struct {
	URL     string // postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
	Dir     string // temporary directory holding everything of the server
	Port    int    // TCP port on 127.0.0.1
	LogFile string // the server's log, inside Dir
	Version int    // major version of the binaries used

	bin     Binaries
	dataDir string
	as      *runUser // nil unless this process is root
	log     zerolog.Logger

	mu      sync.Mutex
	stopped bool
}

// Start creates a temporary directory, initializes a cluster in it (trust
// authentication, UTF8, superuser postgres), and starts a server listening
// on 127.0.0.1 only, on a free port. It returns once the server accepts
// connections. On any failure nothing is left behind: the server is stopped
// and the directory removed.
func Start(ctx context.Context, b Binaries, log zerolog.Logger) (*Server, error) {
	if b.InitDB == "" || b.PGCtl == "" || b.Postgres == "" {
		return nil, errors.New("pgserver: incomplete Binaries (use FindBinaries)")
	}
	s := &Server{bin: b, Version: b.Version, log: log}
	if os.Geteuid() == 0 {
		u, err := unprivilegedUser()
		if err != nil {
			return nil, fmt.Errorf("pgserver: %w", err)
		}
		s.as = u
	}

	dir, err := os.MkdirTemp("", "online-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgserver: create temporary directory: %w", err)
	}
	s.Dir = dir
	s.dataDir = filepath.Join(dir, "data")
	s.LogFile = filepath.Join(dir, "server.log")

	if err := s.start(ctx); err != nil {
		// The caller's context may be what failed; cleaning up must not.
		if stopErr := s.Stop(context.WithoutCancel(ctx)); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("and cleaning up failed: %w", stopErr))
		}
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context) error {
	began := time.Now()
	if s.as != nil {
		if err := chownTo(s.Dir, s.as); err != nil {
			return fmt.Errorf("pgserver: hand %s to user %s: %w", s.Dir, s.as.name, err)
		}
		if err := checkReachable(s.Dir, s.as); err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		s.log.Debug().Str("user", s.as.name).Msg("running as root; the server runs as an unprivileged user")
	}

	// --locale=C: a throwaway needs no collation, and C exists everywhere,
	// while a LANG naming an uninstalled locale makes initdb fail. -N skips
	// the fsyncs that make up most of initdb's time.
	out, err := s.run(ctx, s.bin.InitDB, "-D", s.dataDir, "-U", superuser, "-A", "trust",
		"-E", "UTF8", "--locale=C", "-N")
	if err != nil {
		return fmt.Errorf("pgserver: initdb: %w\n%s", err, indent(string(out)))
	}
	s.log.Debug().Dur("took", time.Since(began)).Str("dir", s.dataDir).Msg("initdb done")

	if err := s.writeConfig(); err != nil {
		return fmt.Errorf("pgserver: write configuration: %w", err)
	}

	for attempt := 1; ; attempt++ {
		port, err := pickPort()
		if err != nil {
			return fmt.Errorf("pgserver: pick a port: %w", err)
		}
		logStart := fileSize(s.LogFile)
		err = s.startOn(ctx, port)
		if err == nil {
			s.Port = port
			break
		}
		// Another process may have bound the port after we released it.
		if attempt < portAttempts && strings.Contains(s.logSince(logStart), "already in use") {
			s.log.Debug().Int("port", port).Msg("port taken meanwhile; trying another")
			continue
		}
		return err
	}
	s.URL = (&url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)),
		Path:     "/postgres",
		RawQuery: "sslmode=disable", // the server has no certificate; skip the SSL probe
	}).String()

	if err := s.waitReady(ctx); err != nil {
		return err
	}
	s.log.Debug().Dur("took", time.Since(began)).Int("port", s.Port).Str("dir", s.Dir).Msg("throwaway server ready")
	return nil
}

// writeConfig appends to postgresql.conf, where later lines win. Settings go
// in the file rather than on the command line so that paths need no shell
// quoting through pg_ctl's -o.
func (s *Server) writeConfig() error {
	sock := s.Dir
	if len(filepath.Join(sock, ".s.PGSQL.65535")) > maxSocketPath {
		// Too long for a unix socket; TCP alone is enough for us.
		sock = ""
	}
	conf := strings.Join([]string{
		"",
		"# throwaway server of online: no one else connects, nothing needs to survive a crash",
		"listen_addresses = '127.0.0.1'",
		"unix_socket_directories = " + confQuote(sock),
		"fsync = off",
		"synchronous_commit = off",
		"full_page_writes = off",
		"",
	}, "\n")
	f, err := os.OpenFile(filepath.Join(s.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(conf); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startOn runs pg_ctl start and lets it wait until the postmaster reports
// itself ready, or exits, or the bounded wait passes.
func (s *Server) startOn(ctx context.Context, port int) error {
	wait := readyTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		wait = time.Until(dl)
	}
	secs := max(int(wait.Round(time.Second)/time.Second), 1)
	out, err := s.run(ctx, s.bin.PGCtl, "start", "-D", s.dataDir, "-l", s.LogFile,
		"-p", s.bin.Postgres, "-o", "-p "+strconv.Itoa(port), "-w", "-t", strconv.Itoa(secs))
	if err != nil {
		return fmt.Errorf("pgserver: start server on port %d: %w\n%s\nserver log %s (last lines):\n%s",
			port, err, indent(string(out)), s.LogFile, indent(s.logTail(20)))
	}
	return nil
}

// waitReady makes sure the server takes a real connection; pg_ctl's "ready"
// is read from postmaster.pid and normally means the same, but this is the
// promise Start makes.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var last error
	for {
		if last = Ping(ctx, s.URL); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgserver: server on port %d does not accept connections: %w\nserver log %s (last lines):\n%s",
				s.Port, last, s.LogFile, indent(s.logTail(20)))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop shuts the server down (fast mode: sessions are ended, no waiting for
// them) and removes its directory. A second call does nothing. A cancelled
// or expired ctx does not stop the shutdown; it makes it immediate instead.
// If the server cannot be stopped, the directory is kept (removing a running
// server's files would hide it, not end it) and Stop may be called again.
func (s *Server) Stop(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()

	if _, err := os.Stat(filepath.Join(s.dataDir, "postmaster.pid")); err == nil {
		mode := "fast"
		if ctx.Err() != nil {
			mode = "immediate"
		}
		if err := s.stopMode(sctx, mode); err != nil && s.running(sctx) {
			s.log.Debug().Err(err).Msg("stop failed; trying immediate shutdown")
			if err2 := s.stopMode(sctx, "immediate"); err2 != nil && s.running(sctx) {
				return fmt.Errorf("pgserver: stop server in %s: %w", s.Dir, errors.Join(err, err2))
			}
		}
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		return fmt.Errorf("pgserver: remove %s: %w", s.Dir, err)
	}
	s.stopped = true
	s.log.Debug().Str("dir", s.Dir).Msg("throwaway server stopped and removed")
	return nil
}

// Crash stops the server as a power cut would, for tests of what survives:
// pg_ctl stop -m immediate, with no checkpoint and no flush of the WAL that
// asynchronous commits left in memory. The directory stays; Restart starts
// the server again on the same port, through crash recovery.
func (s *Server) Crash(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("pgserver: Crash after Stop")
	}
	return s.stopMode(ctx, "immediate")
}

// Restart starts a server stopped by Crash on its port and returns once it
// accepts connections.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("pgserver: Restart after Stop")
	}
	if err := s.startOn(ctx, s.Port); err != nil {
		return err
	}
	return s.waitReady(ctx)
}

func (s *Server) stopMode(ctx context.Context, mode string) error {
	out, err := s.run(ctx, s.bin.PGCtl, "stop", "-D", s.dataDir, "-m", mode, "-w", "-t", "20")
	if err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %w: %s", mode, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// running asks pg_ctl status, which exits 3 when no server runs in the data
// directory and 4 when there is no data directory. Anything else, including
// a failure to ask, counts as running, so that we never delete under a live
// server.
func (s *Server) running(ctx context.Context) bool {
	_, err := s.run(ctx, s.bin.PGCtl, "status", "-D", s.dataDir)
	var ee *exec.ExitError
	if errors.As(err, &ee) && (ee.ExitCode() == 3 || ee.ExitCode() == 4) {
		return false
	}
	return true
}

// run runs one of the PostgreSQL programs as the server's user, inside Dir
// (the caller's working directory may be unreadable to that user), with an
// environment cleared of PG* variables that would redirect it (PGDATA,
// PGPORT, ...) and a C locale so that its messages are plain English.
func (s *Server) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = s.Dir
	cmd.Env = childEnv()
	// pg_ctl leaves the postmaster running; should anything of it keep our
	// output pipe open, do not wait for it forever.
	cmd.WaitDelay = 5 * time.Second
	setCredential(cmd, s.as)
	s.log.Debug().Str("cmd", filepath.Base(prog)).Strs("args", args).Msg("run")
	return cmd.CombinedOutput()
}

func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || k == "LANG" || strings.HasPrefix(k, "LC_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

// logTail returns the last n lines of the server log.
func (s *Server) logTail(n int) string {
	data, err := os.ReadFile(s.LogFile)
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logSince returns what the server log gained after offset.
func (s *Server) logSince(offset int64) string {
	data, err := os.ReadFile(s.LogFile)
	if err != nil || int64(len(data)) < offset {
		return ""
	}
	return string(data[offset:])
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// pickPort is freePort; tests replace it to provoke a port conflict.
var pickPort = freePort

// freePort asks the kernel for a free port on 127.0.0.1 and releases it for
// the server to bind; the small race this leaves is handled by retrying.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// confQuote quotes a postgresql.conf string value.
func confQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

// indent sets command output or log lines off from the message above them.
func indent(text string) string {
	text = strings.TrimSpace(text)
	if text == "" {
		return "  (no output)"
	}
	return "  " + strings.ReplaceAll(text, "\n", "\n  ")
}

// reachTimeout bounds Reachable: it decides whether to start a throwaway
// server, and a person is waiting.
const reachTimeout = 3 * time.Second

// Reachable reports whether a server at connURL accepts a connection within a
// short timeout. A server that answers but refuses the login counts as not
// reachable: it is of no use to the caller either. Use Ping for the reason.
func Reachable(ctx context.Context, connURL string) bool {
	return Ping(ctx, connURL) == nil
}

// Ping connects to connURL (bounded by a short timeout) and disconnects. It
// returns why the connection failed, or nil.
func Ping(ctx context.Context, connURL string) error {
	ctx, cancel := context.WithTimeout(ctx, reachTimeout)
	defer cancel()
	conn, err := pg.Connect(ctx, connURL, pg.Options{ApplicationName: "online-probe"})
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}
