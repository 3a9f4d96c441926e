package demo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/onlinepg/online/internal/pg"
)

// appStatementTimeout bounds every query of a simulated application, as a
// real application's timeout would: a query stuck behind a migration lock
// then shows up as an error in the report instead of hanging the demo.
const appStatementTimeout = 5 * time.Second

// maxErrorSamples is how many distinct error messages an app keeps for the
// report; the count is what matters, a few samples say why.
const maxErrorSamples = 3

// Stats is what one simulated application did.
type Stats struct {
	Queries    int64         // statements sent, failed ones included
	Errors     int64         // statements (or reconnects) that failed
	Reads      int64         // successful reads by id
	Inserts    int64         // successful inserts
	Updates    int64         // successful updates
	MaxLatency time.Duration // slowest successful statement
	Elapsed    time.Duration // how long the app ran
	// ErrorSamples holds the first few distinct error messages.
	ErrorSamples []string
}

// PerSecond is the app's throughput over the time it ran.
func (s Stats) PerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Queries) / s.Elapsed.Seconds()
}

func (s *Stats) add(o Stats) {
	s.Queries += o.Queries
	s.Errors += o.Errors
	s.Reads += o.Reads
	s.Inserts += o.Inserts
	s.Updates += o.Updates
	s.MaxLatency = max(s.MaxLatency, o.MaxLatency)
	for _, m := range o.ErrorSamples {
		s.sample(m)
	}
}

func (s *Stats) sample(msg string) {
	if len(s.ErrorSamples) >= maxErrorSamples {
		return
	}
	for _, m := range s.ErrorSamples {
		if m == msg {
			return
		}
	}
	s.ErrorSamples = append(s.ErrorSamples, msg)
}

// appSpec says which version of the schema an application is written for.
type appSpec struct {
	name       string // "old" or "new", for the report and the logs
	url        string // the scratch database
	searchPath string // the version schema this app uses
	emailCol   string // the name this version gives the email column
	clients    int
	// maxID bounds the ids read and updated: the rows loaded at setup.
	// Rows inserted by the apps are left alone so that the showcase row
	// (and any row one app inserts) is not rewritten at random.
	maxID int64
}

// app is a running simulated application: clients goroutines, each with
// its own connection, doing a mix of reads, inserts and updates.
type app struct {
	spec  appSpec
	log   zerolog.Logger
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	began time.Time

	mu    sync.Mutex
	stats Stats
	ended time.Time
}

// queries are an app's statements. Only the table is unqualified: it is
// found through the connection's search_path, which is how an application
// picks its version.
type queries struct {
	read, insert, update string
}

func queriesFor(emailCol string) queries {
	col := pg.Ident(emailCol)
	tbl := pg.Ident(tableName)
	return queries{
		read:   fmt.Sprintf("SELECT id, %s, name, balance FROM %s WHERE id = $1", col, tbl),
		insert: fmt.Sprintf("INSERT INTO %s (%s, name, balance) VALUES ($1, $2, $3) RETURNING id", tbl, col),
		update: fmt.Sprintf("UPDATE %s SET %s = $1, balance = balance + $2 WHERE id = $3", tbl, col),
	}
}

// appOptions are the session settings of one client: the search_path goes
// in the startup packet, as an application's connection pool would set it,
// so that no statement can run under another version.
func appOptions(spec appSpec) pg.Options {
	return pg.Options{
		SearchPath:       pg.Ident(spec.searchPath),
		StatementTimeout: appStatementTimeout,
		ApplicationName:  "online-demo-" + spec.name,
	}
}

// startApp connects every client first, so that a database that cannot be
// reached fails the demo at once instead of showing up as app errors, then
// sets them running. ctx ends them all (Ctrl-C); stop ends them gently.
func startApp(ctx context.Context, spec appSpec, log zerolog.Logger) (*app, error) {
	a := &app{spec: spec, log: log.With().Str("app", spec.name).Logger(), stop: make(chan struct{})}
	conns, err := pg.ConnectAll(ctx, spec.clients, func(ctx context.Context) (*pgx.Conn, error) {
		return pg.Connect(ctx, spec.url, appOptions(spec))
	})
	if err != nil {
		return nil, fmt.Errorf("%s app: %w", spec.name, err)
	}
	a.began = time.Now()
	for i, c := range conns {
		a.wg.Add(1)
		go a.client(ctx, i, c)
	}
	a.log.Debug().Int("clients", spec.clients).Str("search_path", spec.searchPath).Msg("app started")
	return a, nil
}

// halt asks every client to finish its current statement and return, and
// waits for them. It may be called more than once.
func (a *app) halt() Stats {
	a.once.Do(func() {
		close(a.stop)
		a.wg.Wait()
		a.mu.Lock()
		a.ended = time.Now()
		a.mu.Unlock()
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	s.ErrorSamples = append([]string(nil), s.ErrorSamples...)
	s.Elapsed = a.ended.Sub(a.began)
	return s
}

func (a *app) stopped() bool {
	select {
	case <-a.stop:
		return true
	default:
		return false
	}
}

func (a *app) client(ctx context.Context, id int, conn *pgx.Conn) {
	defer a.wg.Done()
	var st Stats
	defer func() {
		pg.Close(ctx, conn)
		a.mu.Lock()
		a.stats.add(st)
		a.mu.Unlock()
	}()
	q := queriesFor(a.spec.emailCol)
	log := a.log.With().Int("client", id).Logger()
	fail := func(err error) {
		st.Errors++
		if st.Errors == 1 {
			// One line per client is enough to see what went wrong; the
			// report counts the rest.
			log.Warn().Err(err).Msg("query failed")
		}
		st.sample(err.Error())
	}
	for n := 0; !a.stopped() && ctx.Err() == nil; n++ {
		if conn == nil || conn.IsClosed() {
			// A real application's pool would reconnect; so do we, so that
			// one lost connection is one error, not all the following ones.
			c, err := pg.Connect(ctx, a.spec.url, appOptions(a.spec))
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				fail(err)
				a.pause(ctx, 200*time.Millisecond)
				continue
			}
			conn = c
		}
		began := time.Now()
		var err error
		kind := rand.IntN(100)
		switch {
		case kind < 70:
			err = a.read(ctx, conn, q)
			if err == nil {
				st.Reads++
			}
		case kind < 85:
			err = a.insert(ctx, conn, q, id, n)
			if err == nil {
				st.Inserts++
			}
		default:
			err = a.update(ctx, conn, q, id, n)
			if err == nil {
				st.Updates++
			}
		}
		st.Queries++
		if err != nil {
			if ctx.Err() != nil {
				// Cancelled by Ctrl-C: not a failure of the application.
				st.Queries--
				return
			}
			fail(err)
			continue
		}
		st.MaxLatency = max(st.MaxLatency, time.Since(began))
	}
}

func (a *app) pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-a.stop:
	case <-t.C:
	}
}

func (a *app) randomID() int64 { return 1 + rand.Int64N(a.spec.maxID) }

func (a *app) read(ctx context.Context, conn *pgx.Conn, q queries) error {
	var (
		id      int64
		email   string
		name    *string
		balance int32
	)
	err := conn.QueryRow(ctx, q.read, a.randomID()).Scan(&id, &email, &name, &balance)
	if errors.Is(err, pgx.ErrNoRows) {
		// A missing id is an answer, not an error.
		return nil
	}
	return err
}

func (a *app) insert(ctx context.Context, conn *pgx.Conn, q queries, client, n int) error {
	var id int64
	email := fmt.Sprintf("%s-%d-%d@example.com", a.spec.name, client, n)
	return conn.QueryRow(ctx, q.insert, email, fmt.Sprintf("%s app user", a.spec.name), rand.IntN(1000)).Scan(&id)
}

func (a *app) update(ctx context.Context, conn *pgx.Conn, q queries, client, n int) error {
	email := fmt.Sprintf("%s-updated-%d-%d@example.com", a.spec.name, client, n)
	_, err := conn.Exec(ctx, q.update, email, rand.IntN(10)-5, a.randomID())
	return err
}
