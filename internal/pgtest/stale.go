package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
)

// Test databases are named online_test_<host>_<pid>_<unix time>_<random>:
// the host (a hash of its name) and the process that made the database, and
// when. A database its binary could not drop (the binary was killed, or
// panicked, or timed out) is so recognised and dropped by the next binary
// that starts, on any host, without touching the databases of binaries still
// running.
const (
	dbPrefix = "online_test_"
	// staleAfter is the age past which a test database no session uses is
	// taken for left behind when its process cannot be checked (another
	// host, or a name from before the pid was in it).
	staleAfter = 30 * time.Minute
)

// hostTag is a short hash of this host's name.
func hostTag() string {
	h := fnv.New32a()
	name, _ := os.Hostname()
	_, _ = h.Write([]byte(name))
	return fmt.Sprintf("%04x", h.Sum32()&0xffff)
}

// newDBName names a test database made now by this process.
func newDBName(now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%s_%d_%d_%s", dbPrefix, hostTag(), os.Getpid(), now.Unix(), hex.EncodeToString(b[:]))
}

// dbOrigin is what a test database's name says of who made it.
type dbOrigin struct {
	host    string
	pid     int
	created time.Time
}

// parseDBName reads a name made by newDBName; ok is false for any other
// name (such as an older run's online_test_<random>).
func parseDBName(name string) (o dbOrigin, ok bool) {
	rest, found := strings.CutPrefix(name, dbPrefix)
	if !found {
		return o, false
	}
	f := strings.Split(rest, "_")
	if len(f) != 4 || len(f[0]) != 4 {
		return o, false
	}
	pid, err1 := strconv.Atoi(f[1])
	sec, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return o, false
	}
	return dbOrigin{host: f[0], pid: pid, created: time.Unix(sec, 0)}, true
}

// stale says whether a test database no session is connected to was left
// behind: its process, on this host, is gone, or it is older than
// staleAfter. age is the age the server gives for a name that says none
// (negative when unknown).
func stale(name string, age time.Duration, now time.Time) bool {
	o, ok := parseDBName(name)
	if !ok {
		return age > staleAfter
	}
	if o.host == hostTag() && !processAlive(o.pid) {
		return true
	}
	return now.Sub(o.created) > staleAfter
}

// dropStale drops the test databases earlier runs left behind. Only
// databases no session is connected to are considered, and the drop is
// without FORCE: one a test has just connected to stays.
func dropStale(ctx context.Context, admin *pgx.Conn) ([]string, error) {
	// The age of a database whose name does not say it: its PG_VERSION
	// file is written by CREATE DATABASE. Reading it needs the
	// privilege pg_read_server_files; without it the age is unknown and
	// such databases stay.
	ageSQL := `NULL::float8`
	var canRead bool
	if err := admin.QueryRow(ctx, `SELECT pg_has_role(current_user, 'pg_read_server_files', 'member')`).Scan(&canRead); err == nil && canRead {
		ageSQL = `extract(epoch FROM now() - (pg_stat_file('base/' || d.oid || '/PG_VERSION', true)).modification)::float8`
	}
	rows, err := admin.Query(ctx, `SELECT d.datname, coalesce(`+ageSQL+`, -1)
		FROM pg_database d
		WHERE d.datname LIKE 'online\_test\_%'
		  AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)`)
	if err != nil {
		return nil, fmt.Errorf("list test databases: %w", err)
	}
	type cand struct {
		name string
		age  time.Duration
	}
	var cands []cand
	for rows.Next() {
		var c cand
		var secs float64
		if err := rows.Scan(&c.name, &secs); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list test databases: %w", err)
		}
		c.age = time.Duration(secs * float64(time.Second))
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list test databases: %w", err)
	}
	var dropped []string
	now := time.Now()
	for _, c := range cands {
		if !stale(c.name, c.age, now) {
			continue
		}
		// Another binary may drop it first, or a session connect meanwhile:
		// either way it is not this binary's to insist on.
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pg.Ident(c.name)); err == nil {
			dropped = append(dropped, c.name)
		}
	}
	return dropped, nil
}

// live are the test databases of this binary not dropped yet, for the
// interrupt handler.
var live struct {
	sync.Mutex
	names map[string]bool
	once  sync.Once
}

func addLive(name string) {
	live.Lock()
	defer live.Unlock()
	if live.names == nil {
		live.names = map[string]bool{}
	}
	live.names[name] = true
}

func removeLive(name string) {
	live.Lock()
	defer live.Unlock()
	delete(live.names, name)
}

// watchInterrupt makes an interrupt (Ctrl-C, or a SIGTERM from a CI runner)
// drop this binary's test databases before the binary dies of the signal:
// no cleanup of the testing package runs then.
func watchInterrupt() {
	live.once.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		go func() {
			sig := <-ch
			live.Lock()
			names := make([]string, 0, len(live.names))
			for n := range live.names {
				names = append(names, n)
			}
			live.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if admin, err := pg.Connect(ctx, ServerURL(), pg.Options{ApplicationName: "online-test"}); err == nil {
				for _, n := range names {
					_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pg.Ident(n)+" WITH (FORCE)")
				}
				admin.Close(ctx)
			}
			cancel()
			// Die of the signal as the binary would have without us.
			signal.Reset(sig)
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				_ = p.Signal(sig)
			}
			time.Sleep(time.Second)
			os.Exit(2)
		}()
	})
}
