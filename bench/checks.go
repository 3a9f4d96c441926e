package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
)

// Check is one verification of the data or the catalog.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func check(name string, ok bool, format string, args ...any) Check {
	return Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)}
}

func tbl(schema, name string) string { return pg.Ident(schema, name) }

// balanceChecks verifies the TPC-B invariant row by row: every balance
// starts at 0 and each transaction adds its delta to one account, one
// teller and one branch and records it in the history, so each balance is
// the sum of its history deltas. It also compares the history with the
// transactions the workloads counted: a committed transaction missing from
// it, or one too many, is a lost or a phantom write.
func balanceChecks(ctx context.Context, conn *pgx.Conn, schema string, streams []*stream) ([]Check, error) {
	var out []Check
	for _, t := range []struct{ table, key, balance string }{
		{accounts, "aid", "abalance"},
		{tellers, "tid", "tbalance"},
		{branches, "bid", "bbalance"},
	} {
		q := fmt.Sprintf(`SELECT count(x.k), count(*) FILTER (WHERE x.bal IS DISTINCT FROM coalesce(h.d, 0))
FROM (SELECT %[1]s AS k, %[2]s AS bal FROM %[3]s) AS x
FULL JOIN (SELECT %[1]s AS k, sum(delta) AS d FROM %[4]s GROUP BY %[1]s) AS h USING (k)`,
			pg.Ident(t.key), pg.Ident(t.balance), tbl(schema, t.table), tbl(schema, history))
		var rows, differ int64
		if err := conn.QueryRow(ctx, q).Scan(&rows, &differ); err != nil {
			return out, fmt.Errorf("check %s: %w", t.table, pg.WithSQL(err, q))
		}
		out = append(out, check(t.table+" balances", differ == 0,
			"%d rows; %d whose %s is not the sum of the history's deltas for its %s", rows, differ, t.balance, t.key))
	}

	q := fmt.Sprintf(`SELECT (SELECT coalesce(sum(abalance), 0)::bigint FROM %s), (SELECT coalesce(sum(tbalance), 0)::bigint FROM %s),
	(SELECT coalesce(sum(bbalance), 0)::bigint FROM %s), (SELECT coalesce(sum(delta), 0)::bigint FROM %s), (SELECT count(*) FROM %[4]s)`,
		tbl(schema, accounts), tbl(schema, tellers), tbl(schema, branches), tbl(schema, history))
	var sa, st, sb, sd, rows int64
	if err := conn.QueryRow(ctx, q).Scan(&sa, &st, &sb, &sd, &rows); err != nil {
		return out, fmt.Errorf("sum the balances: %w", pg.WithSQL(err, q))
	}
	out = append(out, check("sums", sa == sd && st == sd && sb == sd,
		"sum(abalance) %d, sum(tbalance) %d, sum(bbalance) %d, sum(delta) %d", sa, st, sb, sd))

	var committed, slack int64
	for _, s := range streams {
		committed += s.Committed
		// A failed transaction may have failed after its COMMIT reached
		// the server, and a stopped one may have committed unseen.
		slack += s.InFlight
		for _, x := range s.Samples {
			if x.Failed {
				slack++
			}
		}
	}
	ok := rows >= committed && rows <= committed+slack
	detail := fmt.Sprintf("%d history rows, %d transactions counted as committed", rows, committed)
	if slack > 0 {
		detail += fmt.Sprintf(" (up to %d more may have committed as they were cut off)", slack)
	}
	out = append(out, check("history", ok, "%s", detail))
	return out, nil
}

// versionsAgree compares the two versions while both are live: every
// account the workloads touched must read the same through both (the sync
// triggers at work), and every teller must show its old filler or its up
// value through the new version, its balance through both.
func versionsAgree(ctx context.Context, conn *pgx.Conn, oldV, newV string) ([]Check, error) {
	q := fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE o.abalance IS DISTINCT FROM n.abalance OR o.%s IS DISTINCT FROM n.%s)
FROM (SELECT DISTINCT aid FROM %s) AS h JOIN %s AS o USING (aid) JOIN %s AS n USING (aid)`,
		pg.Ident(renamedFrom), pg.Ident(renamedTo), tbl(oldV, history), tbl(oldV, accounts), tbl(newV, accounts))
	var rows, differ int64
	if err := conn.QueryRow(ctx, q).Scan(&rows, &differ); err != nil {
		return nil, fmt.Errorf("compare the versions of %s: %w", accounts, pg.WithSQL(err, q))
	}
	out := []Check{check("versions agree: accounts", differ == 0 && rows > 0,
		"%d accounts written by the workloads read through %s and %s; %d differ in abalance or filler/note", rows, oldV, newV, differ)}

	q = fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE o.tbalance IS DISTINCT FROM n.tbalance
	OR rtrim(n.filler) IS DISTINCT FROM coalesce(rtrim(o.filler), %s))
FROM %s AS o FULL JOIN %s AS n USING (tid)`, tellerFillerUpAs("o"), tbl(oldV, tellers), tbl(newV, tellers))
	if err := conn.QueryRow(ctx, q).Scan(&rows, &differ); err != nil {
		return out, fmt.Errorf("compare the versions of %s: %w", tellers, pg.WithSQL(err, q))
	}
	out = append(out, check("versions agree: tellers", differ == 0 && rows > 0,
		"%d tellers; %d whose tbalance differs, or whose new filler is not coalesce(old filler, %s)", rows, differ, tellerFillerUp))
	return out, nil
}

// tellerFillerUpAs is tellerFillerUp with its column taken from alias.
func tellerFillerUpAs(alias string) string {
	return "'teller ' || " + pg.Ident(alias) + ".tid"
}

// migrationChecks verifies, after complete, that the tables are what the
// migration defines and that nothing of the machinery is left.
func migrationChecks(ctx context.Context, conn *pgx.Conn, schema, newVersion string) ([]Check, error) {
	var out []Check
	columns := func(table string) ([]string, error) {
		var cols []string
		err := conn.QueryRow(ctx, `SELECT coalesce(array_agg(attname::text ORDER BY attnum), '{}') FROM pg_attribute
WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, tbl(schema, table)).Scan(&cols)
		if err != nil {
			return nil, fmt.Errorf("read the columns of %s: %w", table, err)
		}
		return cols, nil
	}
	acols, err := columns(accounts)
	if err != nil {
		return nil, err
	}
	want := []string{"aid", "bid", renamedTo, "abalance"}
	out = append(out, check("pgbench_accounts columns", sameSet(acols, want),
		"(%s); want %s (filler renamed to %s, no hidden column left)", strings.Join(acols, ", "), strings.Join(want, ", "), renamedTo))

	tc, err := typeCheck(ctx, conn, schema)
	if err != nil {
		return out, err
	}
	out = append(out, tc)

	var fkValid bool
	var fkTarget string
	err = conn.QueryRow(ctx, `SELECT convalidated, confrelid::regclass::text FROM pg_constraint
WHERE conrelid = $1::regclass AND conname = $2 AND contype = 'f'`, tbl(schema, accounts), fkName).Scan(&fkValid, &fkTarget)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		out = append(out, check("foreign key", false, "%s is missing", fkName))
	case err != nil:
		return out, fmt.Errorf("read foreign key %s: %w", fkName, err)
	default:
		out = append(out, check("foreign key", fkValid && strings.HasSuffix(fkTarget, branches),
			"%s references %s, validated: %t", fkName, fkTarget, fkValid))
	}

	var ixValid bool
	var ixDef string
	err = conn.QueryRow(ctx, `SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index AS i
WHERE i.indexrelid = to_regclass($1)`, tbl(schema, indexName)).Scan(&ixValid, &ixDef)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		out = append(out, check("index", false, "%s is missing", indexName))
	case err != nil:
		return out, fmt.Errorf("read index %s: %w", indexName, err)
	default:
		out = append(out, check("index", ixValid && strings.Contains(ixDef, "(bid)"), "%s, valid: %t", ixDef, ixValid))
	}

	tcols, err := columns(tellers)
	if err != nil {
		return out, err
	}
	var notNull bool
	var nulls, wrong, rows int64
	q := fmt.Sprintf(`SELECT (SELECT attnotnull FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'filler' AND NOT attisdropped),
	count(*), count(*) FILTER (WHERE filler IS NULL), count(*) FILTER (WHERE rtrim(filler) IS DISTINCT FROM %s)
FROM %s`, tellerFillerUpAs(tellers), tbl(schema, tellers))
	if err := conn.QueryRow(ctx, q, tbl(schema, tellers)).Scan(&notNull, &rows, &nulls, &wrong); err != nil {
		return out, fmt.Errorf("check pgbench_tellers.filler: %w", pg.WithSQL(err, q))
	}
	wantT := []string{"tid", "bid", "tbalance", "filler"}
	out = append(out, check("pgbench_tellers.filler", notNull && nulls == 0 && wrong == 0 && sameSet(tcols, wantT),
		"NOT NULL: %t; %d rows, %d NULL, %d not equal to its up value %s; columns (%s)",
		notNull, rows, nulls, wrong, tellerFillerUp, strings.Join(tcols, ", ")))

	var triggers, hidden int64
	rels := []string{tbl(schema, accounts), tbl(schema, tellers), tbl(schema, branches), tbl(schema, history)}
	err = conn.QueryRow(ctx, `SELECT
	(SELECT count(*) FROM pg_trigger WHERE tgrelid = ANY($1::regclass[]) AND NOT tgisinternal),
	(SELECT count(*) FROM pg_attribute WHERE attrelid = ANY($1::regclass[]) AND attname LIKE '\_online\_%' AND NOT attisdropped)`,
		rels).Scan(&triggers, &hidden)
	if err != nil {
		return out, fmt.Errorf("look for leftovers: %w", err)
	}
	out = append(out, check("nothing left behind", triggers == 0 && hidden == 0,
		"%d triggers and %d hidden columns left on the four tables", triggers, hidden))

	var views int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_views WHERE schemaname = $1`, newVersion).Scan(&views); err != nil {
		return out, fmt.Errorf("count the views of %s: %w", newVersion, err)
	}
	out = append(out, check("new version", views == 4, "%d views in %s; want 4", views, newVersion))
	return out, nil
}

// typeCheck verifies the column type the blocking ALTER set.
func typeCheck(ctx context.Context, conn *pgx.Conn, schema string) (Check, error) {
	var typ string
	if err := conn.QueryRow(ctx, `SELECT coalesce(format_type(atttypid, atttypmod), '') FROM pg_attribute
WHERE attrelid = $1::regclass AND attname = 'abalance' AND NOT attisdropped`, tbl(schema, accounts)).Scan(&typ); err != nil {
		return Check{}, fmt.Errorf("read the type of abalance: %w", err)
	}
	return check("abalance type", typ == "bigint", "%s; want bigint", typ), nil
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
