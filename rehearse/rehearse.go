package rehearse

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/scratchdb"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
)

// Prefix starts the name of every database a rehearsal creates.
const Prefix = "online_rehearse_"

// Options say what to copy, where, and how the engine runs on the copy.
type Options struct {
	// SourceURL names the live database; it is only read.
	SourceURL string
	// TargetURL names a database of the server where the copies are made
	// (a staging server); "" makes them on the live database's server.
	TargetURL   string
	Schema      string // default "public"
	StateSchema string // default "online"
	Sample      Sample
	// ReadLockTimeout bounds every lock wait of the reads on the live
	// database (default 1s); a read that would wait longer fails.
	ReadLockTimeout time.Duration
	// LockTimeout and LockRetryDeadline are the engine's, on the copy.
	LockTimeout       time.Duration
	LockRetryDeadline time.Duration
	// Writes is how many rows are inserted and updated through each
	// version in each table (default 3).
	Writes int
	// PgDump is the pg_dump binary (default: pg_dump on PATH).
	PgDump string
	Log    zerolog.Logger
}

// Migration is one file to rehearse.
type Migration struct {
	File      string
	Migration *operations.Migration
}

// Report is what a rehearsal found.
type Report struct {
	// Success is true when every migration started, took the writes of
	// both versions, completed on one copy and rolled back on another.
	Success bool   `json:"success"`
	Sample  string `json:"sample"`
	Target  string `json:"target"`
	// Copies starts the name of every database the rehearsal made (and
	// dropped).
	Copies string        `json:"copies"`
	Tables []TableCopy   `json:"tables"`
	Scale  float64       `json:"scale"` // live rows per copied row
	Copy   time.Duration `json:"copy_ns"`
	Runs   []Rehearsal   `json:"rehearsals"`
	// Failures lists every error, with the file, the operation and the
	// field when the error names them.
	Failures []Failure `json:"failures"`
}

// Rehearsal is one pass over the migrations on a fresh copy, ending each
// with complete or with rollback.
type Rehearsal struct {
	Ending     string            `json:"ending"`
	Migrations []MigrationReport `json:"migrations"`
	// LongestWait is the longest a probe's read or write lock took on the
	// copy while the migrations ran, and on which table.
	LongestWait   time.Duration `json:"longest_wait_ns"`
	LongestWaitOn string        `json:"longest_wait_on,omitempty"`
	Probes        int           `json:"probes"`
	Growth        []Growth      `json:"growth"`
	Skipped       string        `json:"skipped,omitempty"`
}

// MigrationReport is one migration of a rehearsal.
type MigrationReport struct {
	File   string  `json:"file"`
	Name   string  `json:"name"`
	Phases []Phase `json:"phases"`
	// BackfillRows and BackfillTime are the copy's; BackfillRate is rows
	// per second.
	BackfillRows int64         `json:"backfill_rows"`
	BackfillTime time.Duration `json:"backfill_ns"`
	BackfillRate float64       `json:"backfill_rate"`
	Locks        []Lock        `json:"locks"`
	Writes       []Write       `json:"writes"`
	OK           bool          `json:"ok"`
}

// Phase is one engine call.
type Phase struct {
	Name string        `json:"name"`
	Took time.Duration `json:"took_ns"`
	// Scaled is Took times the report's Scale: a linear guess at the
	// phase on the live table sizes.
	Scaled time.Duration `json:"scaled_ns"`
	Err    string        `json:"error,omitempty"`
}

// Lock is the strongest lock online's sessions were seen holding (or
// waiting for) on a relation.
type Lock struct {
	Relation string `json:"relation"`
	Mode     string `json:"mode"`
}

// Write is one statement written through a version.
type Write struct {
	Version string `json:"version"`
	Table   string `json:"table"`
	Kind    string `json:"kind"`   // insert, update
	Result  string `json:"result"` // ok, skipped, failed
	Rows    int64  `json:"rows"`
	Err     string `json:"error,omitempty"`
}

// Growth is a table's pg_total_relation_size before and after a rehearsal.
type Growth struct {
	Table  string `json:"table"`
	Before int64  `json:"before"`
	After  int64  `json:"after"`
}

// Failure is one error of a rehearsal.
type Failure struct {
	Rehearsal string `json:"rehearsal"`
	File      string `json:"file"`
	Phase     string `json:"phase"`
	Op        int    `json:"operation,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Field     string `json:"field,omitempty"`
	Message   string `json:"message"`
}

type runner struct {
	opts         Options
	targetServer string
	id           string
	created      []string
	rep          *Report
}

// Run rehearses the migrations, in order. It returns an error only when the
// rehearsal itself could not run (a connection, the copy); a migration that
// fails is a Report with Success false. Every database it created is
// dropped before it returns.
func Run(ctx context.Context, opts Options, migs []Migration) (*Report, error) {
	// The id makes the names scratch database names (see scratchdb): a
	// rehearsal's databases left by a killed process are dropped by the
	// next rehearsal.
	return run(ctx, opts, migs, strings.TrimPrefix(scratchdb.Name(Prefix, time.Now()), Prefix))
}

func run(ctx context.Context, opts Options, migs []Migration, id string) (rep *Report, err error) {
	if opts.Schema == "" {
		opts.Schema = "public"
	}
	if opts.StateSchema == "" {
		opts.StateSchema = "online"
	}
	if opts.ReadLockTimeout <= 0 {
		opts.ReadLockTimeout = time.Second
	}
	if opts.Writes <= 0 {
		opts.Writes = 3
	}
	r := &runner{opts: opts, targetServer: opts.TargetURL, id: id}
	if r.targetServer == "" {
		r.targetServer = opts.SourceURL
	}
	r.rep = &Report{Sample: opts.Sample.String(), Target: pg.Redact(r.targetServer), Copies: Prefix + r.id + "_", Runs: []Rehearsal{}, Failures: []Failure{}}
	defer func() {
		for i := len(r.created) - 1; i >= 0; i-- {
			if derr := r.dropDB(ctx, r.created[i]); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}()
	base := Prefix + r.id + "_base"
	began := time.Now()
	tables, err := r.makeBase(ctx, base)
	if err != nil {
		return nil, fmt.Errorf("copy the live database: %w", err)
	}
	r.rep.Copy = time.Since(began)
	r.rep.Tables = tables
	var live, copied float64
	for _, t := range tables {
		copied += float64(t.Copied)
		if t.LiveRows >= 0 {
			live += t.LiveRows
		} else {
			live += float64(t.Copied)
		}
	}
	r.rep.Scale = 1
	if copied > 0 && live > copied {
		r.rep.Scale = live / copied
	}
	for i, ending := range []string{"complete", "rollback"} {
		if i > 0 && startFailed(r.rep.Runs[0]) {
			r.rep.Runs = append(r.rep.Runs, Rehearsal{Ending: ending, Skipped: "start failed in the first rehearsal", Growth: []Growth{}})
			continue
		}
		db := fmt.Sprintf("%s%s_%d", Prefix, r.id, i+1)
		admin, err := pg.Connect(ctx, r.targetServer, pg.Options{ApplicationName: "online-rehearse"})
		if err != nil {
			return nil, err
		}
		err = r.createDB(ctx, admin, db, base)
		pg.Close(ctx, admin)
		if err != nil {
			return nil, err
		}
		reh, err := r.rehearse(ctx, db, ending, migs)
		if err != nil {
			return nil, err
		}
		r.rep.Runs = append(r.rep.Runs, *reh)
		if derr := r.dropDB(ctx, db); derr != nil {
			return nil, derr
		}
		r.created = r.created[:len(r.created)-1]
	}
	r.rep.Success = len(r.rep.Failures) == 0
	return r.rep, nil
}

func (r *runner) dbURL(name string) string {
	u, err := pg.WithDatabase(r.targetServer, name)
	if err != nil {
		return ""
	}
	return u
}

func (r *runner) fail(reh string, m Migration, phase string, err error) string {
	f := Failure{Rehearsal: reh, File: m.File, Phase: phase, Message: pg.Explain(err)}
	var oe *operations.Error
	if errors.As(err, &oe) {
		f.Op, f.Kind, f.Field = oe.Op, oe.Kind, oe.Field
	} else {
		f.Op, f.Kind, f.Field = locate(m.Migration, err)
	}
	r.rep.Failures = append(r.rep.Failures, f)
	return f.Message
}

// rehearse runs every migration on the copy db, each ending with ending.
// With "rollback", a migration that rolled back is started and completed
// again, so that the next one meets the schema it was written for.
func (r *runner) rehearse(ctx context.Context, db, ending string, migs []Migration) (*Rehearsal, error) {
	url := r.dbURL(db)
	reh := &Rehearsal{Ending: ending}
	conn, err := pg.Connect(ctx, url, pg.Options{ApplicationName: "online-rehearse"})
	if err != nil {
		return nil, err
	}
	defer pg.Close(ctx, conn)
	before, err := sizes(ctx, conn, r.opts.Schema)
	if err != nil {
		return nil, err
	}
	watch, err := startWatch(ctx, url, r.opts.Schema, r.opts.StateSchema)
	if err != nil {
		return nil, err
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			watch.stop()
			reh.LongestWait, reh.LongestWaitOn, reh.Probes = watch.longest()
		}
	}
	defer stop()
	cfg := phases.Config{URL: url, Schema: r.opts.Schema, StateSchema: r.opts.StateSchema, LockTimeout: r.opts.LockTimeout,
		LockRetryDeadline: r.opts.LockRetryDeadline, Log: r.opts.Log,
		// As before the library's zero values became its defaults: a
		// rehearsal copy has neither application nor standbys to wait for.
		BackfillYield: phases.Off, MaxReplicaLag: phases.Off}
	for i, m := range migs {
		mr, err := r.one(ctx, cfg, watch, ending, m, i == len(migs)-1)
		if err != nil {
			return nil, err
		}
		reh.Migrations = append(reh.Migrations, *mr)
		if !mr.OK {
			break
		}
	}
	stop()
	after, err := sizes(ctx, conn, r.opts.Schema)
	if err != nil {
		return nil, err
	}
	reh.Growth = []Growth{}
	for _, t := range sortedKeys(before, after) {
		reh.Growth = append(reh.Growth, Growth{Table: t, Before: before[t], After: after[t]})
	}
	return reh, nil
}

// one runs one migration: start, writes through both versions, then
// complete or rollback. An error is returned only for a cancel or a
// problem of the rehearsal itself.
func (r *runner) one(ctx context.Context, cfg phases.Config, watch *watcher, ending string, m Migration, last bool) (*MigrationReport, error) {
	mr := &MigrationReport{File: m.File, Name: m.Migration.Name, Locks: []Lock{}, Writes: []Write{}}
	e, err := phases.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer func() { _ = e.Close(context.WithoutCancel(ctx)) }()
	if err := e.Init(ctx); err != nil {
		return nil, err
	}
	oldVersion, err := e.Latest(ctx)
	if err != nil {
		return nil, err
	}
	watch.track()
	phase := func(name string, call func() (*phases.Result, error)) (*phases.Result, bool, error) {
		began := time.Now()
		res, err := call()
		p := Phase{Name: name, Took: time.Since(began)}
		p.Scaled = time.Duration(float64(p.Took) * r.rep.Scale)
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		if err != nil {
			p.Err = r.fail(ending, m, name, err)
		}
		mr.Phases = append(mr.Phases, p)
		return res, err == nil, nil
	}
	res, ok, err := phase("start", func() (*phases.Result, error) { return e.Start(ctx, m.Migration) })
	if err != nil || !ok {
		mr.Locks = watch.locks()
		return mr, err
	}
	mr.BackfillTime = res.Backfill
	if st, err := e.Status(ctx); err == nil && st.InProgress != nil {
		for _, b := range st.InProgress.Backfills {
			mr.BackfillRows += b.RowsDone
		}
	}
	if mr.BackfillTime > 0 {
		mr.BackfillRate = float64(mr.BackfillRows) / mr.BackfillTime.Seconds()
	}
	writesOK := true
	for _, v := range []string{oldVersion, res.VersionSchema} {
		ws, err := r.writes(ctx, cfg.URL, v)
		if err != nil {
			return nil, err
		}
		for _, w := range ws {
			if w.Result == "failed" {
				writesOK = false
				r.rep.Failures = append(r.rep.Failures, Failure{Rehearsal: ending, File: m.File, Phase: "writes through " + v, Message: fmt.Sprintf("%s into %s: %s", w.Kind, w.Table, w.Err)})
			}
		}
		mr.Writes = append(mr.Writes, ws...)
	}
	end := (*phases.Engine).Complete
	if ending == "rollback" {
		end = (*phases.Engine).Rollback
	}
	_, ok, err = phase(ending, func() (*phases.Result, error) { return end(e, ctx) })
	if err != nil {
		return nil, err
	}
	mr.Locks = watch.locks()
	mr.OK = ok && writesOK
	if ok && ending == "rollback" && !last {
		// The next migration was written for the schema this one makes.
		if _, err := e.Start(ctx, m.Migration); err != nil {
			mr.OK = false
			r.fail(ending, m, "start again after rollback", err)
			return mr, nil
		}
		if _, err := e.Complete(ctx); err != nil {
			mr.OK = false
			r.fail(ending, m, "complete after rollback", err)
		}
	}
	return mr, nil
}

func sizes(ctx context.Context, conn *pgx.Conn, schemaName string) (map[string]int64, error) {
	rows, err := conn.Query(ctx, `SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind = 'r'`, schemaName)
	if err != nil {
		return nil, fmt.Errorf("read table sizes of the copy: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var n string
		var s int64
		if err := rows.Scan(&n, &s); err != nil {
			return nil, fmt.Errorf("read table sizes of the copy: %w", err)
		}
		out[n] = s
	}
	return out, rows.Err()
}

// startFailed is true when a start of the rehearsal failed: the second
// rehearsal would fail the same way.
func startFailed(reh Rehearsal) bool {
	for _, m := range reh.Migrations {
		for _, p := range m.Phases {
			if p.Name == "start" && p.Err != "" {
				return true
			}
		}
	}
	return false
}

var (
	backfillColumn = regexp.MustCompile(`SET "_online_((?:[^"]|"")+)" =`)
	backfillTable  = regexp.MustCompile(`^UPDATE "(?:[^"]|"")+"\."((?:[^"]|"")+)"`)
)

// locate names the operation and field behind a failed backfill statement:
// the one that gives the rewritten column its up expression.
func locate(m *operations.Migration, err error) (op int, kind, field string) {
	var se *pg.StatementError
	if !errors.As(err, &se) {
		return 0, "", ""
	}
	cm, tm := backfillColumn.FindStringSubmatch(se.SQL), backfillTable.FindStringSubmatch(se.SQL)
	if cm == nil || tm == nil {
		return 0, "", ""
	}
	col, table := strings.ReplaceAll(cm[1], `""`, `"`), strings.ReplaceAll(tm[1], `""`, `"`)
	for i, o := range m.Operations {
		switch o := o.(type) {
		case *operations.AlterColumn:
			if o.Table == table && o.Column == col {
				return i + 1, "alter_column", "up"
			}
		case *operations.AddColumn:
			if o.Table == table && o.Column.Name == col {
				return i + 1, "add_column", "up"
			}
		case *operations.CreateConstraint:
			if o.Table == table && o.Up[col] != "" {
				return i + 1, "create_constraint", "up." + col
			}
		}
	}
	return 0, "", ""
}
