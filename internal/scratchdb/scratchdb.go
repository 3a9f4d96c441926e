// Package scratchdb names the databases online makes for a while and drops
// again (the tests', diff's, rehearse's, the demo's and bench live's), so
// that one a killed process left behind is recognised and dropped by the
// next run, on any host, without touching those of processes still running.
//
// A name is <prefix><host>_<pid>_<unix time>_<random>: a hash of the host's
// name, the process that made the database, and when. A database is left
// behind when no session uses it and either its process, on this host, is
// gone, or it is older than StaleAfter (another host's, or a name from
// before the pid was in it).
package scratchdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
)

// StaleAfter is the age past which a scratch database no session uses is
// taken for left behind when its process cannot be checked.
const StaleAfter = 30 * time.Minute

// HostTag is a short hash of this host's name.
func HostTag() string {
	h := fnv.New32a()
	name, _ := os.Hostname()
	_, _ = h.Write([]byte(name))
	return fmt.Sprintf("%04x", h.Sum32()&0xffff)
}

// Name names a scratch database made now by this process. With a prefix of
// up to 21 bytes the name fits PostgreSQL's 63.
func Name(prefix string, now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%s_%d_%d_%s", prefix, HostTag(), os.Getpid(), now.Unix(), hex.EncodeToString(b[:]))
}

// Origin is what a scratch database's name says of who made it.
type Origin struct {
	Host    string
	PID     int
	Created time.Time
}

// Parse reads a name made by Name with prefix, or such a name followed by
// "_" and a suffix of the caller's (a rehearsal's several databases); ok is
// false for any other name (such as an older run's <prefix><random>).
func Parse(prefix, name string) (o Origin, ok bool) {
	rest, found := strings.CutPrefix(name, prefix)
	if !found {
		return o, false
	}
	f := strings.Split(rest, "_")
	if len(f) < 4 || len(f[0]) != 4 || len(f[3]) != 12 {
		return o, false
	}
	pid, err1 := strconv.Atoi(f[1])
	sec, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return o, false
	}
	return Origin{Host: f[0], PID: pid, Created: time.Unix(sec, 0)}, true
}

// Stale says whether a scratch database of prefix that no session is
// connected to was left behind. age is the age the server gives for a name
// that says none (negative when unknown).
func Stale(prefix, name string, age time.Duration, now time.Time) bool {
	o, ok := Parse(prefix, name)
	if !ok {
		return age > StaleAfter
	}
	if o.Host == HostTag() && !processAlive(o.PID) {
		return true
	}
	return now.Sub(o.Created) > StaleAfter
}

// DropStale drops the databases of prefix that earlier runs left behind and
// returns their names. Only databases no session is connected to are
// considered, and the drop is without FORCE: one a process has just
// connected to stays. A database the role may not drop is skipped.
func DropStale(ctx context.Context, admin *pgx.Conn, prefix string) ([]string, error) {
	// The age of a database whose name does not say it: its PG_VERSION
	// file is written by CREATE DATABASE. Reading it needs the
	// privilege pg_read_server_files; without it the age is unknown and
	// such databases stay.
	ageSQL := `NULL::float8`
	var canRead bool
	if err := admin.QueryRow(ctx, `SELECT pg_has_role(current_user, 'pg_read_server_files', 'member')`).Scan(&canRead); err == nil && canRead {
		ageSQL = `extract(epoch FROM now() - (pg_stat_file('base/' || d.oid || '/PG_VERSION', true)).modification)::float8`
	}
	pattern := strings.NewReplacer(`\`, `\\`, `_`, `\_`, `%`, `\%`).Replace(prefix) + "%"
	rows, err := admin.Query(ctx, `SELECT d.datname, coalesce(`+ageSQL+`, -1)
		FROM pg_database d
		WHERE d.datname LIKE $1
		  AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)`, pattern)
	if err != nil {
		return nil, fmt.Errorf("list %s databases: %w", prefix, err)
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
			return nil, fmt.Errorf("list %s databases: %w", prefix, err)
		}
		c.age = time.Duration(secs * float64(time.Second))
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s databases: %w", prefix, err)
	}
	var dropped []string
	now := time.Now()
	for _, c := range cands {
		if !Stale(prefix, c.name, c.age, now) {
			continue
		}
		// Another process may drop it first, or a session connect
		// meanwhile: either way it is not this one's to insist on.
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pg.Ident(c.name)); err == nil {
			dropped = append(dropped, c.name)
		}
	}
	return dropped, nil
}
