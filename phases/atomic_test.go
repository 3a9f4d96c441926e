package phases_test

// The property that no migration can be stuck: for every case of the
// lifecycle suites (runLifecycle runs this for each), complete and rollback
// are made to fail at each of their statements in turn. After every
// failure nothing may have changed (catalog, state and data digests), the
// migration stays published, and then both complete and rollback must
// still succeed.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/phases"
)

var errInjected = errors.New("injected failure")

// digest summarises everything a failed command must leave as it was: the
// catalog of every schema but the system's (columns, constraints, indexes
// with their names, triggers, functions, types, views), online's state
// rows, and every row of every table of the migrated schema.
func (e *env) digest() string {
	e.t.Helper()
	const catalog = `SELECT md5(coalesce(string_agg(x, E'\n' ORDER BY x), '')) FROM (
	SELECT 'ns ' || nspname AS x FROM pg_namespace WHERE nspname !~ '^(pg_|information_schema)'
	UNION ALL SELECT 'rel ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname !~ '^(pg_|information_schema)'
	UNION ALL SELECT 'col ' || a.attrelid::regclass::text || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
	FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	WHERE n.nspname !~ '^(pg_|information_schema)' AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL SELECT 'con ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated
	FROM pg_constraint WHERE connamespace IN (SELECT oid FROM pg_namespace WHERE nspname !~ '^(pg_|information_schema)')
	UNION ALL SELECT 'idx ' || pg_get_indexdef(indexrelid) || ' ' || indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname !~ '^(pg_|information_schema)'
	UNION ALL SELECT 'trg ' || tgrelid::regclass::text || ' ' || tgname || ' ' || tgenabled::text FROM pg_trigger WHERE NOT tgisinternal
	UNION ALL SELECT 'fn ' || p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname !~ '^(pg_|information_schema)'
	UNION ALL SELECT 'type ' || t.oid::regtype::text || coalesce(' ' || (SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid), '')
	FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname !~ '^(pg_|information_schema)' AND t.typtype IN ('e', 'd', 'c')
	UNION ALL SELECT 'view ' || c.oid::regclass::text || ' ' || pg_get_viewdef(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind = 'v' AND n.nspname !~ '^(pg_|information_schema)'
	UNION ALL SELECT 'state ' || name || ' ' || phase || ' ' || steps_done || ' ' || contract_done FROM online.migrations
	UNION ALL SELECT 'pending ' || migration || ' ' || seq || ' ' || sql FROM online.pending
) s`
	var out strings.Builder
	var sum string
	if err := e.db.QueryRow(context.Background(), catalog).Scan(&sum); err != nil {
		e.t.Fatalf("catalog digest: %v", err)
	}
	out.WriteString(sum)
	for _, tbl := range e.rows(e.db, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public' ORDER BY 1`) {
		var d string
		if err := e.db.QueryRow(context.Background(), fmt.Sprintf("SELECT coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM %s t", tbl)).Scan(&d); err != nil {
			e.t.Fatalf("data digest of %s: %v", tbl, err)
		}
		out.WriteString(" " + tbl + "=" + d)
	}
	return out.String()
}

// failEachStep makes command (complete or rollback, run by run) fail at each
// of its statements in turn, and at the state update that ends its
// transaction, asserting after each that nothing changed. It returns how
// many failure points it tried.
func (e *env) failEachStep(what string, run func(*phases.Engine) (*phases.Result, error)) int {
	e.t.Helper()
	want := e.digest()
	for k := 0; ; k++ {
		eng := e.engine()
		last := false
		phases.SetInject(eng, func(w string, i int, stmt string) error {
			if w != what {
				return nil
			}
			if stmt == "record" {
				last = true
				return errInjected
			}
			if i == k {
				return errInjected
			}
			return nil
		})
		_, err := run(eng)
		if !errors.Is(err, errInjected) {
			e.t.Fatalf("%s with a failure injected at statement %d: %v, want the injected failure", what, k, err)
		}
		if !strings.Contains(err.Error(), "nothing was changed") {
			e.t.Fatalf("%s failed at statement %d: the error does not say that nothing was changed: %s", what, k, pg.Explain(err))
		}
		_ = eng.Close(context.Background())
		if got := e.digest(); got != want {
			e.t.Fatalf("%s failed at statement %d and changed something:\n got %s\nwant %s", what, k, got, want)
		}
		if last {
			return k + 1
		}
	}
}

// versionsServe reads every view of version schema vs and its table
// through the old version: after a failed complete or rollback both must
// still answer, with the same rows.
func (e *env) versionsServe(vs string) {
	e.t.Helper()
	for _, v := range e.rows(e.db, `SELECT quote_ident(c.relname) || '|' || d.refobjid::regclass::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_rewrite r ON r.ev_class = c.oid JOIN pg_depend d ON d.objid = r.oid AND d.refobjid <> c.oid AND d.deptype = 'n'
JOIN pg_class t ON t.oid = d.refobjid AND t.relkind IN ('r', 'p')
WHERE n.nspname = $1 AND c.relkind = 'v' GROUP BY 1 ORDER BY 1`, vs) {
		view, table, _ := strings.Cut(v, "|")
		n := e.rows(e.db, fmt.Sprintf("SELECT count(*) FROM %s.%s", pg.Ident(vs), view))
		m := e.rows(e.db, fmt.Sprintf("SELECT count(*) FROM %s", table))
		if strings.Join(n, "") != strings.Join(m, "") {
			e.t.Fatalf("view %s.%s sees %v rows, its table %s %v", vs, view, n, table, m)
		}
	}
}
