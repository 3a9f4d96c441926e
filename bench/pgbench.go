package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/onlinepg/online/internal/pg"
)

// pgbenchMaxSeconds is the -T given to every pgbench run. Runs are stopped
// long before; the bound only keeps a pgbench from running on for ever if
// this process died without stopping it.
const pgbenchMaxSeconds = 3600

// stopTimeout bounds how long stopping a pgbench run may take before it is
// killed.
const stopTimeout = 15 * time.Second

// pgbenchDriver runs pgbench's built-in tpcb-like script.
type pgbenchDriver struct {
	path    string // the pgbench program
	version string // its --version line
	tmpDir  string // where its transaction logs go; "" is the system's
}

var _ driver = (*pgbenchDriver)(nil)

// findPgbench returns a driver for the pgbench at path, or on PATH when path
// is "".
func findPgbench(ctx context.Context, path string) (*pgbenchDriver, error) {
	if path == "" {
		path = "pgbench"
	}
	found, err := exec.LookPath(path)
	if err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, found, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("run %s --version: %w", found, err)
	}
	v, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return &pgbenchDriver{path: found, version: v}, nil
}

func (d *pgbenchDriver) name() string { return "pgbench" }

func (d *pgbenchDriver) describe() string {
	return fmt.Sprintf("%s, built-in tpcb-like script, simple query mode, one log line per transaction (-l)", d.version)
}

// connArg turns a connection string into pgbench's dbname argument and
// environment. A password in a URL moves to PGPASSWORD, so that it is not
// on pgbench's command line for everyone's ps to see.
func connArg(dbURL string) (arg string, env []string) {
	u, err := url.Parse(dbURL)
	if err != nil || u.Scheme == "" || u.User == nil {
		return dbURL, nil
	}
	if pw, ok := u.User.Password(); ok {
		env = append(env, "PGPASSWORD="+pw)
		u.User = url.User(u.User.Username())
	}
	return u.String(), env
}

// pgOptions is PGOPTIONS setting search_path. libpq splits PGOPTIONS on
// white space (a backslash escapes one); the quoted identifier is kept as is
// by the server, which reads it as search_path's own syntax.
func pgOptions(searchPath string) string {
	v := strings.ReplaceAll(pg.Ident(searchPath), `\`, `\\`)
	v = strings.ReplaceAll(v, " ", `\ `)
	return "-c search_path=" + v
}

func (d *pgbenchDriver) command(ctx context.Context, dbURL, searchPath, appName string, args ...string) *exec.Cmd {
	arg, env := connArg(dbURL)
	cmd := exec.CommandContext(ctx, d.path, append(args, arg)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "PGOPTIONS="+pgOptions(searchPath), "PGAPPNAME="+appName)
	// Killed with ctx: pgbench has nothing to clean up.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// initialize runs `pgbench -i -s SCALE`: tables, data, vacuum, primary keys.
func (d *pgbenchDriver) initialize(ctx context.Context, dbURL string, scale int) error {
	cmd := d.command(ctx, dbURL, schemaName, "online-bench-init", "-i", "-q", "-s", strconv.Itoa(scale))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgbench -i -s %d: %w\n%s", scale, err, indent(tail(string(out), 10)))
	}
	return nil
}

func (d *pgbenchDriver) start(ctx context.Context, spec loadSpec) (load, error) {
	dir, err := os.MkdirTemp(d.tmpDir, "online-bench-")
	if err != nil {
		return nil, fmt.Errorf("make a directory for pgbench's logs: %w", err)
	}
	threads := max(1, min(spec.clients, runtime.NumCPU()))
	// -n: no vacuum before the run, which would also truncate
	// pgbench_history, the record the checks compare the balances with
	// (and cannot work through a version's views anyway).
	cmd := d.command(ctx, spec.dbURL, spec.version, spec.appName(),
		"-n", "-b", "tpcb-like", "-c", strconv.Itoa(spec.clients), "-j", strconv.Itoa(threads),
		"-T", strconv.Itoa(pgbenchMaxSeconds), "-l", "--log-prefix", filepath.Join(dir, "tx"))
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	l := &pgbenchLoad{spec: spec, dir: dir, cmd: cmd, stdout: &stdout, done: make(chan struct{})}
	l.launched = time.Now()
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start pgbench: %w", err)
	}
	l.readerDone = make(chan struct{})
	go l.readStderr(stderr)
	go func() {
		// Wait only after stderr is drained, as exec.Cmd requires of pipes.
		<-l.readerDone
		l.waitErr = cmd.Wait()
		close(l.done)
	}()
	return l, nil
}

// pgbenchLoad is a running pgbench.
type pgbenchLoad struct {
	spec       loadSpec
	dir        string
	cmd        *exec.Cmd
	stdout     *bytes.Buffer
	launched   time.Time
	done       chan struct{} // closed when pgbench has exited
	readerDone chan struct{}
	waitErr    error

	mu       sync.Mutex
	stopping time.Time // zero until stop is called
	aborts   []sample  // client aborts before the stop: failures
	errs     []string
	lines    []string // the last lines of stderr, for a pgbench that fails
}

// readStderr timestamps each client abort as it is reported; pgbench's
// messages carry no time of their own.
func (l *pgbenchLoad) readStderr(r io.Reader) {
	defer close(l.readerDone)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		now := time.Now()
		l.mu.Lock()
		l.lines = append(l.lines, line)
		if len(l.lines) > 20 {
			l.lines = l.lines[1:]
		}
		if strings.Contains(line, "aborted") && strings.Contains(line, "client") && l.stopping.IsZero() {
			// The client is gone for the rest of the run: that is a failed
			// transaction and, for the application, a lost connection.
			l.aborts = append(l.aborts, sample{End: now, Failed: true})
			if len(l.errs) < maxErrorSamples {
				l.errs = append(l.errs, strings.TrimPrefix(line, "pgbench: error: "))
			}
		}
		l.mu.Unlock()
	}
}

func (l *pgbenchLoad) exited() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// stop terminates the workload's sessions, which makes pgbench's clients
// abort and pgbench exit normally, writing out its logs, and reads them.
func (l *pgbenchLoad) stop(ctx context.Context) (*stream, error) {
	defer os.RemoveAll(l.dir)
	l.mu.Lock()
	early := l.exited()
	if l.stopping.IsZero() {
		l.stopping = time.Now()
	}
	stopping := l.stopping
	l.mu.Unlock()

	if !early {
		if err := l.terminate(ctx); err != nil {
			_ = l.cmd.Process.Kill()
			<-l.done
			return nil, err
		}
	}
	<-l.done
	s := &stream{App: l.spec.app, Version: l.spec.version, Launched: l.launched, Stopping: stopping,
		InFlight: int64(l.spec.clients)}
	l.mu.Lock()
	s.Samples = append(s.Samples, l.aborts...)
	for _, e := range l.errs {
		s.addError(e)
	}
	lines := strings.Join(l.lines, "\n")
	l.mu.Unlock()

	if err := readTxLogs(l.dir, s); err != nil {
		return s, err
	}
	s.finish()
	var exit *exec.ExitError
	switch {
	case l.waitErr == nil:
	case errors.As(l.waitErr, &exit) && exit.ExitCode() == 2:
		// 2 is "the run was aborted": our stop, or clients lost to errors,
		// which are counted above.
	default:
		return s, fmt.Errorf("pgbench (%s app) failed: %w\n%s", l.spec.app, l.waitErr, indent(tail(lines, 10)))
	}
	if early && s.Committed == 0 {
		return s, fmt.Errorf("pgbench (%s app) exited before it was stopped, without a transaction:\n%s", l.spec.app, indent(tail(lines, 10)))
	}
	return s, nil
}

// terminate ends the sessions of the workload until pgbench has exited.
// It repeats because a client may still be connecting when the first
// round runs.
func (l *pgbenchLoad) terminate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	conn, err := pg.Connect(ctx, l.spec.dbURL, pg.Options{ApplicationName: "online-bench-control"})
	if err != nil {
		return fmt.Errorf("stop the %s app: %w", l.spec.app, err)
	}
	defer pg.Close(ctx, conn)
	const q = `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = $1 AND application_name = $2 AND pid <> pg_backend_pid()`
	for {
		if _, err := conn.Exec(ctx, q, l.spec.dbName, l.spec.appName()); err != nil {
			return fmt.Errorf("stop the %s app: %w", l.spec.app, pg.WithSQL(err, q))
		}
		select {
		case <-l.done:
			return nil
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("stop the %s app: pgbench did not exit within %s", l.spec.app, stopTimeout)
		}
	}
}

// readTxLogs reads pgbench's per-transaction logs (one file per thread,
// named PREFIX.PID and PREFIX.PID.N) into s.
func readTxLogs(dir string, s *stream) error {
	files, err := filepath.Glob(filepath.Join(dir, "tx.*"))
	if err != nil {
		return err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read pgbench's log: %w", err)
		}
		got, err := parseTxLog(data)
		if err != nil {
			return fmt.Errorf("read pgbench's log %s: %w", filepath.Base(f), err)
		}
		s.Samples = append(s.Samples, got...)
	}
	return nil
}

// parseTxLog reads lines of pgbench's -l format:
//
//	client_id transaction_no time script_no time_epoch time_us [...]
//
// where time is the latency in microseconds, or "failed" (also
// "serialization" or "deadlock" with --failures-detailed), or "skipped"
// (only with --rate and --latency-limit), and time_epoch.time_us is when the
// transaction finished. A last line cut short (pgbench was killed) is
// skipped.
func parseTxLog(data []byte) ([]sample, error) {
	var out []sample
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 6 {
			if i == len(lines)-1 {
				break
			}
			return nil, fmt.Errorf("line %d: %d fields, want at least 6: %q", i+1, len(f), line)
		}
		sec, err1 := strconv.ParseInt(f[4], 10, 64)
		usec, err2 := strconv.ParseInt(f[5], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("line %d: bad time stamp: %w", i+1, err)
		}
		x := sample{End: time.Unix(sec, usec*1000)}
		switch f[2] {
		case "failed", "serialization", "deadlock":
			x.Failed = true
		case "skipped":
			continue
		default:
			us, err := strconv.ParseFloat(f[2], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: bad latency %q", i+1, f[2])
			}
			x.Latency = time.Duration(us * float64(time.Microsecond))
		}
		out = append(out, x)
	}
	return out, nil
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
