package pg

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Blocker is a session that holds a lock another session waits for, as
// pg_stat_activity shows it, for a person to decide whether to wait for it
// or end it.
type Blocker struct {
	PID         int           `json:"pid"`
	User        string        `json:"user"`
	Application string        `json:"application_name"`
	State       string        `json:"state"`           // active, idle in transaction, ...
	XactAge     time.Duration `json:"xact_age"`        // how long its transaction has been open
	QueryStart  time.Time     `json:"query_start"`     // when its current or last query began
	Query       string        `json:"query,omitempty"` // the start of that query
}

// blockerQueryLen is how much of a blocker's query is shown.
const blockerQueryLen = 120

func (b Blocker) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "pid %d (user %s", b.PID, b.User)
	if b.Application != "" {
		fmt.Fprintf(&s, ", application %q", b.Application)
	}
	fmt.Fprintf(&s, ", %s", b.State)
	if b.XactAge > 0 {
		fmt.Fprintf(&s, ", transaction open for %s", b.XactAge.Round(time.Second/10))
	}
	if !b.QueryStart.IsZero() {
		fmt.Fprintf(&s, ", query started %s", b.QueryStart.UTC().Format("15:04:05"))
	}
	if q := strings.Join(strings.Fields(b.Query), " "); q != "" {
		if len(q) > blockerQueryLen {
			q = q[:blockerQueryLen] + "..."
		}
		fmt.Fprintf(&s, ": %s", q)
	}
	s.WriteString(")")
	return s.String()
}

// BlockersText lists blockers for a message, with what the operator may do.
func BlockersText(bs []Blocker) string {
	if len(bs) == 0 {
		return ""
	}
	parts := make([]string, len(bs))
	pids := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = b.String()
		pids[i] = fmt.Sprint(b.PID)
	}
	return fmt.Sprintf("blocked by %s; wait for them to finish, or, at your choice, end them with SELECT pg_terminate_backend(pid) (pid %s)",
		strings.Join(parts, ", "), strings.Join(pids, ", "))
}

// Blockers reads, on conn, the sessions that block session pid's lock wait
// now (pg_blocking_pids): none when it waits for nothing.
func Blockers(ctx context.Context, conn *pgx.Conn, pid uint32) ([]Blocker, error) {
	rows, err := conn.Query(ctx, `SELECT a.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''), coalesce(a.state, ''),
		coalesce(extract(epoch FROM now() - a.xact_start), 0)::float8, a.query_start, left(coalesce(a.query, ''), $2)
		FROM pg_stat_activity a WHERE a.pid = ANY (pg_blocking_pids($1))
		ORDER BY a.xact_start NULLS LAST, a.pid`, int32(pid), blockerQueryLen+1)
	if err != nil {
		return nil, fmt.Errorf("read the sessions blocking pid %d: %w", pid, err)
	}
	defer rows.Close()
	var out []Blocker
	for rows.Next() {
		var b Blocker
		var age float64
		var qs *time.Time
		if err := rows.Scan(&b.PID, &b.User, &b.Application, &b.State, &age, &qs, &b.Query); err != nil {
			return nil, fmt.Errorf("read the sessions blocking pid %d: %w", pid, err)
		}
		b.XactAge = time.Duration(age * float64(time.Second))
		if qs != nil {
			b.QueryStart = *qs
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// BlockerWatch looks, from a session of its own, at who blocks another
// session while that one runs a statement: a statement that fails on
// lock_timeout has stopped waiting by the time its error arrives, and
// pg_blocking_pids then says nothing. The watching session is opened the
// first time a statement runs longer than After, and kept until Close.
type BlockerWatch struct {
	// Open opens the watching session.
	Open func(ctx context.Context) (*pgx.Conn, error)
	// After is how long a statement runs before the first look; then
	// every After until it ends.
	After time.Duration
	// OnSeen, when set, is told each time a look finds blockers other
	// than the last look's (for the log).
	OnSeen func(pid uint32, bs []Blocker)

	mu   sync.Mutex // one watch at a time on conn
	conn *pgx.Conn
	bad  bool // Open failed: watch no more
}

// Watch starts watching session pid and returns the function that stops
// and returns the blockers of the last look that found any.
func (w *BlockerWatch) Watch(ctx context.Context, pid uint32) (stop func() []Blocker) {
	if w == nil || w.Open == nil {
		return func() []Blocker { return nil }
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var seen []Blocker
	go func() {
		defer close(done)
		w.mu.Lock()
		defer w.mu.Unlock()
		var last string
		// The first look when a lock wait may be under way; then about
		// once a second: a long wait (an index build waiting for old
		// transactions) needs no closer watch.
		for every := w.After; Sleep(wctx, every) == nil; every = max(w.After, time.Second) {
			if w.conn == nil || w.conn.IsClosed() {
				if w.bad {
					return
				}
				c, err := w.Open(wctx)
				if err != nil {
					// Advice only: without a session to look from,
					// waits are reported without their blockers.
					w.bad = wctx.Err() == nil
					return
				}
				w.conn = c
			}
			bs, err := Blockers(wctx, w.conn, pid)
			if err != nil {
				// A failed look (a cancel in the middle of one
				// included) leaves what the last one saw.
				continue
			}
			if len(bs) == 0 {
				continue
			}
			seen = bs
			if key := fmt.Sprint(pids(bs)); key != last && w.OnSeen != nil {
				last = key
				w.OnSeen(pid, bs)
			}
		}
	}()
	return func() []Blocker {
		cancel()
		<-done
		return seen
	}
}

// Close closes the watching session, if one was opened.
func (w *BlockerWatch) Close(ctx context.Context) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		Close(ctx, w.conn)
		w.conn = nil
	}
}

func pids(bs []Blocker) []int {
	out := make([]int, len(bs))
	for i, b := range bs {
		out[i] = b.PID
	}
	return out
}

// LockWait is a session waiting for a lock now, and who holds it.
type LockWait struct {
	PID         int           `json:"pid"`
	Application string        `json:"application_name"`
	Waiting     time.Duration `json:"waiting_ns"` // since its statement began
	Query       string        `json:"query,omitempty"`
	Blockers    []Blocker     `json:"blockers"`
}

func (w LockWait) String() string {
	q := strings.Join(strings.Fields(w.Query), " ")
	if len(q) > blockerQueryLen {
		q = q[:blockerQueryLen] + "..."
	}
	return fmt.Sprintf("pid %d (%s) has waited %s for a lock (%s); %s", w.PID, w.Application,
		w.Waiting.Round(time.Second/10), q, BlockersText(w.Blockers))
}

// LockWaits reads, on conn, the sessions of the current database whose
// application_name starts with appPrefix that wait for a lock now, each
// with the sessions that block it. A session of another process is seen
// (status looks at a running start or backfill this way); conn's own is
// left out.
func LockWaits(ctx context.Context, conn *pgx.Conn, appPrefix string) ([]LockWait, error) {
	rows, err := conn.Query(ctx, `SELECT a.pid, coalesce(a.application_name, ''),
		coalesce(extract(epoch FROM now() - a.query_start), 0)::float8, left(coalesce(a.query, ''), $2)
		FROM pg_stat_activity a
		WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.wait_event_type = 'Lock'
		  AND starts_with(coalesce(a.application_name, ''), $1)
		ORDER BY a.query_start NULLS LAST, a.pid`, appPrefix, blockerQueryLen+1)
	if err != nil {
		return nil, fmt.Errorf("read the sessions waiting for a lock: %w", err)
	}
	var out []LockWait
	for rows.Next() {
		var w LockWait
		var secs float64
		if err := rows.Scan(&w.PID, &w.Application, &secs, &w.Query); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read the sessions waiting for a lock: %w", err)
		}
		w.Waiting = time.Duration(secs * float64(time.Second))
		out = append(out, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the sessions waiting for a lock: %w", err)
	}
	kept := out[:0]
	for _, w := range out {
		bs, err := Blockers(ctx, conn, uint32(w.PID))
		if err != nil {
			return nil, err
		}
		if len(bs) == 0 {
			continue // it got its lock between the two looks
		}
		w.Blockers = bs
		kept = append(kept, w)
	}
	return kept, nil
}
