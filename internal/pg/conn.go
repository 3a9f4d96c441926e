package pg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/rs/zerolog"
)

// DefaultURL is tried when neither DATABASE_URL nor any libpq PG* variable is set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres"

// libpqVars are the environment variables that make an empty connection
// string meaningful to pgx (it reads them the way libpq does).
var libpqVars = []string{"PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE", "PGSERVICEFILE", "PGPASSFILE", "PGSSLMODE", "PGAPPNAME"}

// ResolveURL picks the connection string: an explicit value first, then
// DATABASE_URL, then the libpq PG* variables (returned as ""), then DefaultURL.
func ResolveURL(explicit string) string {
	if explicit != "" {
		return explicit
	}
	if v := os.Getenv("DATABASE_URL"); v != "" {
		return v
	}
	for _, k := range libpqVars {
		if os.Getenv(k) != "" {
			return ""
		}
	}
	return DefaultURL
}

// Options are the session settings of a connection made by online. They go in
// the startup packet (RuntimeParams), never in a SET on a shared pool, so that
// every statement of the connection runs under them.
type Options struct {
	// LockTimeout bounds how long any statement may wait for a lock. Zero
	// leaves the server default.
	LockTimeout time.Duration
	// StatementTimeout bounds any statement. Zero leaves the server default.
	StatementTimeout time.Duration
	// ApplicationName shows in pg_stat_activity; default "online".
	ApplicationName string
	// SearchPath, when set, is the connection's search_path.
	SearchPath string
	// KeepAlive turns on TCP keepalives at both ends, probing an idle
	// connection after 10s: when the operator's machine vanishes (a lost
	// host, a dropped VPN), the server ends the session, and with it the
	// schema's advisory lock, within about 25s instead of the system
	// default of two hours; the client notices a dead server as fast.
	KeepAlive bool
	// Tracer, when set, sees every query of the connection (pgx's
	// tracers: QueryTracer, and BatchTracer if it implements that too).
	Tracer pgx.QueryTracer
	// SlotWait is how long Connect waits for a free connection while the
	// server turns new ones away as full ("too many clients") or starting.
	// Zero means DefaultSlotWait; a negative value fails at once.
	SlotWait time.Duration
}

// DefaultSlotWait is how long a connection waits for a free slot on a full
// server. On a server other services share, a slot is given back within
// seconds as their sessions end; a backfill worker or an engine that
// failed at once would end a migration for a passing peak of connections.
const DefaultSlotWait = 2 * time.Minute

// Keepalive timing of KeepAlive: the first probe after keepAliveIdle of
// silence, then one every keepAliveInterval, giving up after keepAliveCount.
const (
	keepAliveIdle     = 10 * time.Second
	keepAliveInterval = 5 * time.Second
	keepAliveCount    = 3
)

// ParseConfig builds a pgx connection config with the session settings of o,
// and makes a cancelled context send a cancel request to the server, so that
// Ctrl-C stops the statement there and not only in this process.
func ParseConfig(connURL string, o Options) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(connURL)
	if err != nil {
		return nil, fmt.Errorf("parse connection string %q: %w", Redact(connURL), err)
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	name := o.ApplicationName
	if name == "" {
		name = "online"
	}
	if _, set := cfg.RuntimeParams["application_name"]; !set {
		cfg.RuntimeParams["application_name"] = name
	}
	if o.LockTimeout > 0 {
		cfg.RuntimeParams["lock_timeout"] = fmt.Sprintf("%dms", o.LockTimeout.Milliseconds())
	}
	if o.StatementTimeout > 0 {
		cfg.RuntimeParams["statement_timeout"] = fmt.Sprintf("%dms", o.StatementTimeout.Milliseconds())
	}
	if o.SearchPath != "" {
		cfg.RuntimeParams["search_path"] = o.SearchPath
	}
	if o.KeepAlive {
		// The server's side: settable by any user, ignored on Unix sockets.
		cfg.RuntimeParams["tcp_keepalives_idle"] = strconv.Itoa(int(keepAliveIdle.Seconds()))
		cfg.RuntimeParams["tcp_keepalives_interval"] = strconv.Itoa(int(keepAliveInterval.Seconds()))
		cfg.RuntimeParams["tcp_keepalives_count"] = strconv.Itoa(keepAliveCount)
		// The client's side.
		d := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount}}
		cfg.DialFunc = d.DialContext
	}
	if o.Tracer != nil {
		cfg.Tracer = o.Tracer
	}
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, CancelRequestDelay: 0, DeadlineDelay: 2 * time.Second}
	}
	return cfg, nil
}

// Connect opens one dedicated connection with the settings of o. While the
// server has no connection free it waits (o.SlotWait), saying so once in
// ctx's log, instead of failing.
func Connect(ctx context.Context, connURL string, o Options) (*pgx.Conn, error) {
	cfg, err := ParseConfig(connURL, o)
	if err != nil {
		return nil, err
	}
	patience := o.SlotWait
	if patience == 0 {
		patience = DefaultSlotWait
	}
	began := time.Now()
	pause := 50 * time.Millisecond
	for {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			return conn, nil
		}
		if !ServerFull(err) || time.Since(began) >= patience {
			return nil, &ConnectError{Target: Describe(connURL, cfg), Err: err}
		}
		if pause == 50*time.Millisecond {
			zerolog.Ctx(ctx).Warn().Str("server", Describe(connURL, cfg)).Dur("patience", patience).
				Msg("the server has no connection free: waiting for one")
		}
		if err := Sleep(ctx, pause); err != nil {
			return nil, &ConnectError{Target: Describe(connURL, cfg), Err: err}
		}
		pause = min(2*pause, time.Second)
	}
}

// ServerFull reports the server turning a connection away for want of a
// free one (too_many_connections) or while it starts (cannot_connect_now):
// both pass once other sessions end or the server is up.
func ServerFull(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == pgerrcode.TooManyConnections || pe.Code == pgerrcode.CannotConnectNow)
}

// Describe names the server of a config for messages, without the password.
func Describe(connURL string, cfg *pgx.ConnConfig) string {
	if cfg == nil {
		return Redact(connURL)
	}
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// Redact hides the password of a connection URL or keyword/value string.
func Redact(connURL string) string {
	if u, err := url.Parse(connURL); err == nil && u.Scheme != "" {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	fields := strings.Fields(connURL)
	for i, f := range fields {
		if strings.HasPrefix(f, "password=") {
			fields[i] = "password=xxxxx"
		}
	}
	return strings.Join(fields, " ")
}

// WithDatabase returns connURL pointing at another database (URL form or
// keyword/value form; an empty string means the PG* variables).
func WithDatabase(connURL, db string) (string, error) {
	if connURL == "" {
		cfg, err := pgx.ParseConfig("")
		if err != nil {
			return "", err
		}
		u := url.URL{Scheme: "postgres", Host: fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), Path: "/" + db}
		if cfg.Password != "" {
			u.User = url.UserPassword(cfg.User, cfg.Password)
		} else {
			u.User = url.User(cfg.User)
		}
		if strings.HasPrefix(cfg.Host, "/") {
			return fmt.Sprintf("host=%s port=%d user=%s dbname=%s", cfg.Host, cfg.Port, cfg.User, db), nil
		}
		return u.String(), nil
	}
	if u, err := url.Parse(connURL); err == nil && u.Scheme != "" {
		u.Path = "/" + db
		return u.String(), nil
	}
	return connURL + " dbname=" + db, nil
}

// ServerVersion returns the server's version without the packager's part:
// "15.4" for "15.4 (Debian 15.4-1)".
func ServerVersion(ctx context.Context, conn *pgx.Conn) (string, error) {
	var version string
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version')").Scan(&version); err != nil {
		return "", fmt.Errorf("read the server version: %w", err)
	}
	version, _, _ = strings.Cut(version, " ")
	return version, nil
}

// Close closes c (nil is allowed) within two seconds, even when ctx is
// already done: a cancelled run still says goodbye to the server instead of
// leaving its backend to notice the dropped socket.
func Close(ctx context.Context, c *pgx.Conn) {
	if c == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = c.Close(cctx)
}

// ConnectAll opens n connections with dial, or none: on the first failure
// it closes those already open and returns the error, so that a version
// that cannot be reached fails a run at once.
func ConnectAll(ctx context.Context, n int, dial func(context.Context) (*pgx.Conn, error)) ([]*pgx.Conn, error) {
	conns := make([]*pgx.Conn, 0, n)
	for range n {
		c, err := dial(ctx)
		if err != nil {
			for _, c := range conns {
				Close(ctx, c)
			}
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}
