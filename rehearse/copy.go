package rehearse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/scratchdb"
)

// Sample says how much of each table is copied.
type Sample struct {
	// Rows copies at most this many rows of each table (the first ones
	// a sequential scan meets); Fraction copies a random fraction
	// (TABLESAMPLE BERNOULLI). Both zero: every row.
	Rows     int64
	Fraction float64
}

// ParseSample reads --sample: "all", a row count ("10000") or a fraction
// ("0.1", "10%").
func ParseSample(s string) (Sample, error) {
	switch {
	case s == "" || s == "all":
		return Sample{}, nil
	case strings.HasSuffix(s, "%"):
		f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if err != nil || f <= 0 || f > 100 {
			return Sample{}, fmt.Errorf("--sample %q: a percentage must be in (0, 100]", s)
		}
		return Sample{Fraction: f / 100}, nil
	case strings.Contains(s, "."):
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || f > 1 {
			return Sample{}, fmt.Errorf("--sample %q: a fraction must be in (0, 1]", s)
		}
		return Sample{Fraction: f}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return Sample{}, fmt.Errorf("--sample %q: want all, a row count, a fraction (0.1) or a percentage (10%%)", s)
	}
	return Sample{Rows: n}, nil
}

func (s Sample) String() string {
	switch {
	case s.Rows > 0:
		return fmt.Sprintf("first %d rows per table", s.Rows)
	case s.Fraction > 0:
		return fmt.Sprintf("%.4g%% of each table", s.Fraction*100)
	}
	return "all rows"
}

func (s Sample) all() bool { return s.Rows == 0 && s.Fraction == 0 }

// TableCopy is one table of the copy.
type TableCopy struct {
	Table string `json:"table"`
	// LiveRows is the live table's pg_class.reltuples (-1: never
	// analysed; the copied count stands in).
	LiveRows float64 `json:"live_rows"`
	Copied   int64   `json:"copied"`
	// Dropped counts sampled rows deleted because the rows their
	// foreign keys reference were not in the sample.
	Dropped int64 `json:"dropped_orphans,omitempty"`
}

type sourceTable struct {
	schema, name string
	cols         []string // not generated
	reltuples    float64
}

// makeBase copies the schema and data of the live database into a new
// database base on the target server. The live connection is read-only and
// every lock it or pg_dump asks for waits at most lockTimeout.
func (r *runner) makeBase(ctx context.Context, base string) ([]TableCopy, error) {
	cfg, err := pg.ParseConfig(r.opts.SourceURL, pg.Options{ApplicationName: "online-rehearse-read", LockTimeout: r.opts.ReadLockTimeout})
	if err != nil {
		return nil, err
	}
	// Read-only for the whole session, from its startup packet: even a
	// bug here cannot write to the live database.
	cfg.RuntimeParams["default_transaction_read_only"] = "on"
	src, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the live database %s: %w", pg.Describe(r.opts.SourceURL, cfg), err)
	}
	defer pg.Close(ctx, src)
	tx, err := src.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin a snapshot of the live database: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var snapshot string
	if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snapshot); err != nil {
		return nil, fmt.Errorf("export the live snapshot: %w", err)
	}
	tables, err := sourceTables(ctx, tx, r.opts.Schema)
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		for _, c := range t.cols {
			if strings.HasPrefix(c, "_online_") {
				// Its triggers and views would not come with the copy.
				return nil, fmt.Errorf("table %s has online's hidden column %s: a migration is in progress on the live database; complete it or roll it back, then rehearse", t.name, c)
			}
		}
	}
	seqs, err := sequenceValues(ctx, tx, r.opts.Schema)
	if err != nil {
		return nil, err
	}
	pre, err := r.dump(ctx, snapshot, "pre-data")
	if err != nil {
		return nil, err
	}
	post, err := r.dump(ctx, snapshot, "post-data")
	if err != nil {
		return nil, err
	}

	admin, err := pg.Connect(ctx, r.targetServer, pg.Options{ApplicationName: "online-rehearse"})
	if err != nil {
		return nil, err
	}
	defer pg.Close(ctx, admin)
	if err := r.createDB(ctx, admin, base, "template0"); err != nil {
		return nil, err
	}
	dst, err := pg.Connect(ctx, r.dbURL(base), pg.Options{ApplicationName: "online-rehearse"})
	if err != nil {
		return nil, err
	}
	defer pg.Close(ctx, dst)
	if _, err := dst.Exec(ctx, pre); err != nil {
		return nil, fmt.Errorf("create the schema on the copy: %w", pg.WithSQL(err, pre))
	}
	var copies []TableCopy
	for _, t := range tables {
		n, err := copyTable(ctx, tx, dst, t, r.opts.Sample)
		if err != nil {
			return nil, err
		}
		copies = append(copies, TableCopy{Table: t.name, LiveRows: t.reltuples, Copied: n})
	}
	for name, v := range seqs {
		if _, err := dst.Exec(ctx, "SELECT setval($1::regclass, $2)", name, v); err != nil {
			return nil, fmt.Errorf("set sequence %s on the copy: %w", name, err)
		}
	}
	if !r.opts.Sample.all() {
		if err := dropOrphans(ctx, tx, dst, r.opts.Schema, copies); err != nil {
			return nil, err
		}
	}
	if _, err := dst.Exec(ctx, post); err != nil {
		return nil, fmt.Errorf("create indexes and constraints on the copy: %w", pg.WithSQL(err, post))
	}
	// Fresh statistics, as the live database has: the backfill and the
	// planner of each rehearsal read them. After a sample's orphans were
	// deleted, VACUUM FULL also gives the tables the size of their rows,
	// so that the growth measured later is the migration's.
	maintain := "ANALYZE"
	if !r.opts.Sample.all() {
		maintain = "VACUUM (FULL, ANALYZE)"
	}
	if _, err := dst.Exec(ctx, maintain); err != nil {
		return nil, fmt.Errorf("%s the copy: %w", strings.ToLower(maintain), err)
	}
	return copies, nil
}

// dump runs pg_dump for one section of the schema, in the live snapshot.
func (r *runner) dump(ctx context.Context, snapshot, section string) (string, error) {
	bin := r.opts.PgDump
	if bin == "" {
		bin = "pg_dump"
	}
	args := []string{"--schema-only", "--section=" + section, "--schema=" + r.opts.Schema, "--no-owner", "--no-privileges",
		"--snapshot=" + snapshot, fmt.Sprintf("--lock-wait-timeout=%d", r.opts.ReadLockTimeout.Milliseconds())}
	if r.opts.SourceURL != "" {
		args = append(args, "--dbname="+r.opts.SourceURL)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("run pg_dump: not found on PATH (install the PostgreSQL client of the server's version): %w", err)
		}
		return "", fmt.Errorf("run pg_dump --section=%s: %w: %s", section, err, strings.TrimSpace(errb.String()))
	}
	return cleanDump(out.String(), r.opts.Schema), nil
}

var createSchema = regexp.MustCompile(`(?m)^CREATE SCHEMA ([^;]+);$`)

// cleanDump makes pg_dump's script runnable as one simple query: psql
// meta-commands go, and the schema may exist already (public does).
func cleanDump(s, schema string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, `\`) {
			continue
		}
		keep = append(keep, l)
	}
	return createSchema.ReplaceAllString(strings.Join(keep, "\n"), "CREATE SCHEMA IF NOT EXISTS $1;")
}

func sourceTables(ctx context.Context, q pgx.Tx, schemaName string) ([]sourceTable, error) {
	rows, err := q.Query(ctx, `
SELECT n.nspname, c.relname, c.reltuples::float8,
       coalesce((SELECT array_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''), '{}')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind = 'r'
ORDER BY c.relname`, schemaName)
	if err != nil {
		return nil, fmt.Errorf("list the live tables: %w", err)
	}
	defer rows.Close()
	var out []sourceTable
	for rows.Next() {
		var t sourceTable
		if err := rows.Scan(&t.schema, &t.name, &t.reltuples, &t.cols); err != nil {
			return nil, fmt.Errorf("list the live tables: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func sequenceValues(ctx context.Context, q pgx.Tx, schemaName string) (map[string]int64, error) {
	rows, err := q.Query(ctx, `SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename), last_value FROM pg_sequences WHERE schemaname = $1 AND last_value IS NOT NULL`, schemaName)
	if err != nil {
		return nil, fmt.Errorf("read the live sequences: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var n string
		var v int64
		if err := rows.Scan(&n, &v); err != nil {
			return nil, fmt.Errorf("read the live sequences: %w", err)
		}
		out[n] = v
	}
	return out, rows.Err()
}

// copyTable streams a table's rows (or a sample) from the live snapshot into
// the copy, in COPY's binary format.
func copyTable(ctx context.Context, src pgx.Tx, dst *pgx.Conn, t sourceTable, s Sample) (int64, error) {
	if len(t.cols) == 0 {
		return 0, nil
	}
	cols := pg.Idents(t.cols)
	sel := fmt.Sprintf("SELECT %s FROM ONLY %s", cols, pg.Ident(t.schema, t.name))
	switch {
	case s.Rows > 0:
		sel += fmt.Sprintf(" LIMIT %d", s.Rows)
	case s.Fraction > 0:
		sel = fmt.Sprintf("SELECT %s FROM ONLY %s TABLESAMPLE BERNOULLI (%g)", cols, pg.Ident(t.schema, t.name), s.Fraction*100)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := src.Conn().PgConn().CopyTo(ctx, pw, "COPY ("+sel+") TO STDOUT (FORMAT binary)")
		pw.CloseWithError(err)
		done <- err
	}()
	tag, err := dst.PgConn().CopyFrom(ctx, pr, fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT binary)", pg.Ident(t.schema, t.name), cols))
	pr.CloseWithError(err)
	if rerr := <-done; rerr != nil {
		return 0, fmt.Errorf("copy rows of %s from the live database: %w", t.name, rerr)
	}
	if err != nil {
		return 0, fmt.Errorf("copy rows of %s into the copy: %w", t.name, err)
	}
	return tag.RowsAffected(), nil
}

// dropOrphans deletes sampled rows whose foreign keys point at rows the
// sample left out, until none is left (a deletion can orphan rows of a
// table that references that one), so that the constraints can be added.
func dropOrphans(ctx context.Context, src pgx.Tx, dst *pgx.Conn, schemaName string, copies []TableCopy) error {
	rows, err := src.Query(ctx, `
SELECT c.relname, r.relname,
       (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(co.conkey) WITH ORDINALITY k(n, ord) JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.n),
       (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(co.confkey) WITH ORDINALITY k(n, ord) JOIN pg_attribute a ON a.attrelid = co.confrelid AND a.attnum = k.n)
FROM pg_constraint co
JOIN pg_class c ON c.oid = co.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class r ON r.oid = co.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
WHERE co.contype = 'f' AND n.nspname = $1 AND rn.nspname = $1`, schemaName)
	if err != nil {
		return fmt.Errorf("read the live foreign keys: %w", err)
	}
	type fk struct {
		table, ref  string
		cols, rcols []string
	}
	var fks []fk
	for rows.Next() {
		var f fk
		if err := rows.Scan(&f.table, &f.ref, &f.cols, &f.rcols); err != nil {
			rows.Close()
			return fmt.Errorf("read the live foreign keys: %w", err)
		}
		fks = append(fks, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the live foreign keys: %w", err)
	}
	for pass := 0; pass < 100; pass++ {
		var deleted int64
		for _, f := range fks {
			var match, notNull []string
			for i := range f.cols {
				match = append(match, fmt.Sprintf("p.%s = c.%s", pg.Ident(f.rcols[i]), pg.Ident(f.cols[i])))
				notNull = append(notNull, fmt.Sprintf("c.%s IS NOT NULL", pg.Ident(f.cols[i])))
			}
			sql := fmt.Sprintf("DELETE FROM %s c WHERE %s AND NOT EXISTS (SELECT 1 FROM %s p WHERE %s)",
				pg.Ident(schemaName, f.table), strings.Join(notNull, " AND "), pg.Ident(schemaName, f.ref), strings.Join(match, " AND "))
			tag, err := dst.Exec(ctx, sql)
			if err != nil {
				return fmt.Errorf("delete sampled rows of %s that reference rows left out: %w", f.table, err)
			}
			if n := tag.RowsAffected(); n > 0 {
				deleted += n
				for i := range copies {
					if copies[i].Table == f.table {
						copies[i].Dropped += n
						copies[i].Copied -= n
					}
				}
			}
		}
		if deleted == 0 {
			return nil
		}
	}
	return errors.New("delete orphaned sampled rows: still deleting after 100 passes")
}

// createDB makes a database from a template, refusing names outside the
// package's prefix so that the drop can never hit anything else.
func (r *runner) createDB(ctx context.Context, admin *pgx.Conn, name, template string) error {
	if !strings.HasPrefix(name, Prefix) {
		return fmt.Errorf("create database %s: not a rehearsal database name", name)
	}
	if len(r.created) == 0 {
		// What earlier rehearsals could not drop (they were killed) goes
		// first; a failure to do so is no reason to fail this one.
		_, _ = scratchdb.DropStale(ctx, admin, Prefix)
	}
	r.created = append(r.created, name)
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", pg.Ident(name), pg.Ident(template))); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// dropDB drops a rehearsal database, on a context of its own so that it
// runs after a cancel too.
func (r *runner) dropDB(ctx context.Context, name string) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	admin, err := pg.Connect(cctx, r.targetServer, pg.Options{ApplicationName: "online-rehearse"})
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	defer pg.Close(cctx, admin)
	if _, err := admin.Exec(cctx, "DROP DATABASE IF EXISTS "+pg.Ident(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}
