package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
)

// goDriver is the workload when pgbench is not installed: the same tables,
// filled with generate_series, and the same TPC-B-like transaction, sent
// by pgx with its default statement cache, as an application would.
type goDriver struct{}

var _ driver = goDriver{}

func (goDriver) name() string { return "go" }

func (goDriver) describe() string {
	return "TPC-B-like transaction from Go (pgx, prepared statements), pgbench's schema created by generate_series"
}

// initialize does what `pgbench -i` does by default (steps dtgvp): create
// the tables, fill them, vacuum, add the primary keys. Like pgbench, the
// filler of branches and tellers is left NULL and that of accounts empty.
func (goDriver) initialize(ctx context.Context, dbURL string, scale int) error {
	conn, err := pg.Connect(ctx, dbURL, pg.Options{ApplicationName: "online-bench-init"})
	if err != nil {
		return err
	}
	defer pg.Close(ctx, conn)
	t := func(name string) string { return pg.Ident(schemaName, name) }
	stmts := []string{
		fmt.Sprintf("CREATE TABLE %s (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22))", t(history)),
		fmt.Sprintf("CREATE TABLE %s (tid int NOT NULL, bid int, tbalance int, filler char(84)) WITH (fillfactor = 100)", t(tellers)),
		fmt.Sprintf("CREATE TABLE %s (aid int NOT NULL, bid int, abalance int, filler char(84)) WITH (fillfactor = 100)", t(accounts)),
		fmt.Sprintf("CREATE TABLE %s (bid int NOT NULL, bbalance int, filler char(88)) WITH (fillfactor = 100)", t(branches)),
		fmt.Sprintf("INSERT INTO %s (bid, bbalance) SELECT b, 0 FROM generate_series(1, %d) AS b", t(branches), scale),
		fmt.Sprintf("INSERT INTO %s (tid, bid, tbalance) SELECT x, (x - 1) / %d + 1, 0 FROM generate_series(1, %d) AS x",
			t(tellers), tellersPer, tellersPer*scale),
		fmt.Sprintf("INSERT INTO %s (aid, bid, abalance, filler) SELECT a, (a - 1) / %d + 1, 0, '' FROM generate_series(1, %d) AS a",
			t(accounts), perBranch, perBranch*scale),
		fmt.Sprintf("VACUUM ANALYZE %s, %s, %s, %s", t(branches), t(tellers), t(accounts), t(history)),
		fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (bid)", t(branches)),
		fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (tid)", t(tellers)),
		fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (aid)", t(accounts)),
	}
	return execAll(ctx, conn, "create pgbench's tables", stmts...)
}

// tpcbQueries are pgbench's tpcb-like script. The tables are unqualified:
// the session's search_path picks the version.
type tpcbQueries struct {
	updAccount, selAccount, updTeller, updBranch, insHistory string
}

func newTPCBQueries() tpcbQueries {
	return tpcbQueries{
		updAccount: fmt.Sprintf("UPDATE %s SET abalance = abalance + $1 WHERE aid = $2", pg.Ident(accounts)),
		selAccount: fmt.Sprintf("SELECT abalance FROM %s WHERE aid = $1", pg.Ident(accounts)),
		updTeller:  fmt.Sprintf("UPDATE %s SET tbalance = tbalance + $1 WHERE tid = $2", pg.Ident(tellers)),
		updBranch:  fmt.Sprintf("UPDATE %s SET bbalance = bbalance + $1 WHERE bid = $2", pg.Ident(branches)),
		insHistory: fmt.Sprintf("INSERT INTO %s (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)", pg.Ident(history)),
	}
}

func (goDriver) start(ctx context.Context, spec loadSpec) (load, error) {
	l := &goLoad{spec: spec, q: newTPCBQueries(), quit: make(chan struct{})}
	// Connect every client first, so that a version that cannot be reached
	// fails the run at once instead of showing up as failed transactions.
	conns, err := pg.ConnectAll(ctx, spec.clients, func(ctx context.Context) (*pgx.Conn, error) {
		return connect(ctx, spec.dbURL, spec.version, spec.appName())
	})
	if err != nil {
		return nil, fmt.Errorf("%s app: %w", spec.app, err)
	}
	l.launched = time.Now()
	for _, c := range conns {
		l.wg.Add(1)
		go l.client(ctx, c)
	}
	return l, nil
}

// goLoad is a running Go workload.
type goLoad struct {
	spec     loadSpec
	q        tpcbQueries
	launched time.Time
	quit     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
	stopping time.Time

	mu      sync.Mutex
	samples []sample
	errs    []string
}

// stop lets every client finish its transaction, so that nothing is in
// flight: the history then holds exactly the transactions counted.
func (l *goLoad) stop(context.Context) (*stream, error) {
	l.once.Do(func() {
		l.stopping = time.Now()
		close(l.quit)
		l.wg.Wait()
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &stream{App: l.spec.app, Version: l.spec.version, Launched: l.launched, Stopping: l.stopping,
		Samples: append([]sample(nil), l.samples...)}
	for _, e := range l.errs {
		s.addError(e)
	}
	s.finish()
	return s, nil
}

func (l *goLoad) quitting() bool {
	select {
	case <-l.quit:
		return true
	default:
		return false
	}
}

func (l *goLoad) client(ctx context.Context, conn *pgx.Conn) {
	defer l.wg.Done()
	var mine []sample
	var errs []string
	defer func() {
		pg.Close(ctx, conn)
		l.mu.Lock()
		l.samples = append(l.samples, mine...)
		for _, e := range errs {
			if len(l.errs) < maxErrorSamples {
				l.errs = append(l.errs, e)
			}
		}
		l.mu.Unlock()
	}()
	r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	for !l.quitting() && ctx.Err() == nil {
		if conn == nil || conn.IsClosed() {
			// A real application's pool would reconnect; so do we, so that
			// a lost session costs one failure, not all that follow.
			c, err := connect(ctx, l.spec.dbURL, l.spec.version, l.spec.appName())
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				mine = append(mine, sample{End: time.Now(), Failed: true})
				errs = append(errs, err.Error())
				_ = pg.Sleep(ctx, 100*time.Millisecond)
				continue
			}
			conn = c
		}
		began := time.Now()
		err := l.transaction(ctx, conn, r)
		end := time.Now()
		if err != nil && ctx.Err() != nil {
			return // interrupted: not the application's failure
		}
		mine = append(mine, sample{End: end, Latency: end.Sub(began), Failed: err != nil})
		if err != nil && len(errs) < maxErrorSamples {
			errs = append(errs, err.Error())
		}
	}
}

// transaction is one TPC-B-like transaction, with pgbench's random choices.
func (l *goLoad) transaction(ctx context.Context, conn *pgx.Conn, r *rand.Rand) (err error) {
	scale := l.spec.scale
	aid := r.IntN(perBranch*scale) + 1
	bid := r.IntN(scale) + 1
	tid := r.IntN(tellersPer*scale) + 1
	delta := r.IntN(2*maxDeltaAbs+1) - maxDeltaAbs
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if rerr := tx.Rollback(rctx); rerr != nil && !errors.Is(rerr, pgx.ErrTxClosed) {
				// The session is in an unknown state; a new one is safer.
				pg.Close(ctx, conn)
			}
		}
	}()
	q := l.q
	if _, err := tx.Exec(ctx, q.updAccount, delta, aid); err != nil {
		return err
	}
	var balance int64
	if err := tx.QueryRow(ctx, q.selAccount, aid).Scan(&balance); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, q.updTeller, delta, tid); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, q.updBranch, delta, bid); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, q.insHistory, tid, bid, aid, delta); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
