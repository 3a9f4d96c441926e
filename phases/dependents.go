package phases

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/operations"
)

// ErrDependents is returned (through *DependentsError) by Complete and
// Rollback when objects online did not create live in a version schema
// they would drop, or depend on one of its views. Nothing is changed by
// the refusal.
var ErrDependents = errors.New("objects online did not create live in or depend on a version schema")

// ForeignObject is an object online did not create that dropping a
// version schema would take with it: one that lives in the schema (an
// application's table made with search_path set to the version), or one
// that depends on a view of it (a view in public over a version's view).
type ForeignObject struct {
	// Kind is PostgreSQL's name for what it is (pg_identify_object's
	// type): table, view, sequence, function, type, table column...
	Kind string `json:"kind"`
	// Identity is its schema-qualified name, quoted by the server.
	Identity string `json:"identity"`
	Owner    string `json:"owner,omitempty"`
	// drop is the statement that drops it alone ("" when online does not
	// know how to: it must be dropped or moved by hand).
	drop  string
	depth int
}

func (o ForeignObject) String() string {
	s := o.Kind + " " + o.Identity
	if o.Owner != "" {
		s += " (owner " + o.Owner + ")"
	}
	return s
}

// DependentsError lists the objects that stand in the way of dropping a
// version schema.
type DependentsError struct {
	Migration     string
	Command       string // "complete" or "rollback"
	VersionSchema string
	Objects       []ForeignObject
}

func (e *DependentsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: %s of migration %q would drop version schema %s, which holds or is used by %d object(s) online did not create:",
		ErrDependents, e.Command, e.Migration, e.VersionSchema, len(e.Objects))
	manual := false
	for _, o := range e.Objects {
		b.WriteString("\n  - " + o.String())
		if o.drop == "" {
			manual = true
			b.WriteString(" [online cannot drop this kind of object: do it by hand]")
		}
	}
	fmt.Fprintf(&b, "\nnothing was changed. Move them out of %s (ALTER ... SET SCHEMA), or drop them", e.VersionSchema)
	if !manual {
		fmt.Fprintf(&b, " (online %s --drop-dependents drops exactly these)", e.Command)
	}
	b.WriteString(", then run the command again")
	return b.String()
}

func (e *DependentsError) Is(target error) bool { return target == ErrDependents }

// dependentsQuery lists, for version schema $1 whose views online made are
// named $2, every object online did not make that DROP SCHEMA ... CASCADE
// would drop: objects in the schema (their namespace dependency), and
// objects depending on those or on online's views, transitively (normal
// dependencies; one through a view's rule counts as one on the view, which
// is what a user drops; a table's constraint, trigger or column default
// stays itself: CASCADE drops it, not its table). Each row comes with the
// greatest depth at which it was reached, so that dropping deepest first
// never meets a dependent still standing, and with the relation that owns
// it when it is part of one (a column, a constraint, a trigger, a default).
const dependentsQuery = `
WITH RECURSIVE
ns AS (SELECT oid FROM pg_namespace WHERE nspname = $1),
mine AS (
	SELECT c.oid FROM pg_class c JOIN ns ON c.relnamespace = ns.oid
	WHERE c.relkind = 'v' AND c.relname = ANY($2::text[])
),
dep AS (
	SELECT
		CASE WHEN rt.typrelid IS NOT NULL THEN 'pg_class'::regclass::oid ELSE d.refclassid END AS refclassid,
		coalesce(rt.typrelid, d.refobjid) AS refobjid,
		CASE WHEN v.ev_class IS NOT NULL THEN 'pg_class'::regclass::oid ELSE d.classid END AS classid,
		coalesce(v.ev_class, d.objid) AS objid,
		CASE WHEN v.ev_class IS NOT NULL THEN 0 ELSE d.objsubid END AS objsubid
	FROM pg_depend d
	LEFT JOIN (SELECT r.oid, r.ev_class FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
		WHERE c.relkind IN ('v', 'm') AND r.rulename = '_RETURN') v
		ON d.classid = 'pg_rewrite'::regclass AND v.oid = d.objid
	-- A use of a relation's row type counts as a use of the relation.
	LEFT JOIN (SELECT oid, typrelid FROM pg_type WHERE typrelid <> 0) rt
		ON d.refclassid = 'pg_type'::regclass AND rt.oid = d.refobjid
	WHERE d.deptype = 'n'
),
walk(classid, objid, objsubid, depth) AS (
	SELECT d.classid, d.objid, d.objsubid, 0 FROM dep d, ns
	WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = ns.oid
	UNION
	SELECT 'pg_class'::regclass::oid, oid, 0, -1 FROM mine
	UNION
	SELECT d.classid, d.objid, d.objsubid, w.depth + 1 FROM walk w JOIN dep d
	ON d.refclassid = w.classid AND d.refobjid = w.objid
	WHERE w.depth < 32 AND NOT (d.classid = w.classid AND d.objid = w.objid)
),
found AS (
	SELECT classid, objid, objsubid, max(depth) AS depth FROM walk
	WHERE NOT (classid = 'pg_class'::regclass AND objid IN (SELECT oid FROM mine))
	GROUP BY 1, 2, 3
),
part AS (
	SELECT f.*, CASE f.classid
			WHEN 'pg_class'::regclass THEN CASE WHEN f.objsubid <> 0 THEN f.objid END
			WHEN 'pg_attrdef'::regclass THEN (SELECT adrelid FROM pg_attrdef WHERE oid = f.objid)
			WHEN 'pg_trigger'::regclass THEN (SELECT tgrelid FROM pg_trigger WHERE oid = f.objid)
			WHEN 'pg_constraint'::regclass THEN (SELECT nullif(conrelid, 0) FROM pg_constraint WHERE oid = f.objid)
		END AS rel,
		CASE f.classid
			WHEN 'pg_class'::regclass THEN (SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = f.objid AND attnum = f.objsubid)
			WHEN 'pg_attrdef'::regclass THEN (SELECT quote_ident(a.attname) FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.oid = f.objid)
			WHEN 'pg_trigger'::regclass THEN (SELECT quote_ident(tgname) FROM pg_trigger WHERE oid = f.objid)
			WHEN 'pg_constraint'::regclass THEN (SELECT quote_ident(conname) FROM pg_constraint WHERE oid = f.objid)
		END AS sub
	FROM found f
)
SELECT i.type, i.identity, coalesce(pg_get_userbyid(CASE f.classid
		WHEN 'pg_class'::regclass THEN (SELECT relowner FROM pg_class WHERE oid = f.objid)
		WHEN 'pg_proc'::regclass THEN (SELECT proowner FROM pg_proc WHERE oid = f.objid)
		WHEN 'pg_type'::regclass THEN (SELECT typowner FROM pg_type WHERE oid = f.objid)
		WHEN 'pg_operator'::regclass THEN (SELECT oprowner FROM pg_operator WHERE oid = f.objid)
		WHEN 'pg_collation'::regclass THEN (SELECT collowner FROM pg_collation WHERE oid = f.objid)
		WHEN 'pg_statistic_ext'::regclass THEN (SELECT stxowner FROM pg_statistic_ext WHERE oid = f.objid)
	END), ''),
	CASE WHEN f.classid = 'pg_class'::regclass AND f.objsubid = 0 THEN f.objid ELSE 0 END::int8,
	coalesce(f.rel, 0)::int8,
	coalesce((SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = f.rel), ''),
	coalesce(f.sub, ''),
	f.depth
FROM part f CROSS JOIN LATERAL pg_identify_object(f.classid, f.objid, f.objsubid) i`

// dropKeyword is the DROP statement's object kind for each of
// pg_identify_object's types that online drops by itself.
var dropKeyword = map[string]string{
	"table":             "TABLE",
	"view":              "VIEW",
	"materialized view": "MATERIALIZED VIEW",
	"sequence":          "SEQUENCE",
	"foreign table":     "FOREIGN TABLE",
	"index":             "INDEX",
	"function":          "FUNCTION",
	"procedure":         "PROCEDURE",
	"aggregate":         "AGGREGATE",
	"type":              "TYPE",
	"domain":            "DOMAIN",
}

// dropFirst orders, at one depth, the kinds whose drop must come first:
// relations before the sequences, types and functions they use.
func dropFirst(kind string) int {
	switch kind {
	case "table column", "table constraint", "trigger", "default value":
		return 0
	case "view", "materialized view":
		return 1
	case "table", "foreign table":
		return 2
	}
	return 3
}

// foreignObjects lists what dropping version schema vs would take that
// online did not create, in the order to drop them; views are the names
// of online's views in it.
func (e *Engine) foreignObjects(ctx context.Context, vs string, views []string) ([]ForeignObject, error) {
	if views == nil {
		views = []string{}
	}
	rows, err := e.conn.Query(ctx, dependentsQuery, vs, views)
	if err != nil {
		return nil, fmt.Errorf("list the objects in and on version schema %s: %w", vs, err)
	}
	defer rows.Close()
	type row struct {
		o       ForeignObject
		self    int64
		rel     int64
		relName string
		subName string
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.o.Kind, &r.o.Identity, &r.o.Owner, &r.self, &r.rel, &r.relName, &r.subName, &r.o.depth); err != nil {
			return nil, fmt.Errorf("list the objects in and on version schema %s: %w", vs, err)
		}
		all = append(all, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the objects in and on version schema %s: %w", vs, err)
	}
	// A part (column, constraint, trigger, default) of a relation that
	// goes too is not listed apart: it goes with it, and the relation must
	// then go no later than the part would have.
	rels := map[int64]int{}
	for i, r := range all {
		if r.self != 0 {
			rels[r.self] = i
		}
	}
	var out []ForeignObject
	for _, r := range all {
		if i, ok := rels[r.rel]; ok && r.rel != 0 {
			all[i].o.depth = max(all[i].o.depth, r.o.depth)
		}
	}
	for _, r := range all {
		if _, ok := rels[r.rel]; ok && r.rel != 0 {
			continue
		}
		o := r.o
		// The identity and the names come quoted by the server
		// (pg_identify_object, quote_ident).
		switch {
		case r.relName == "" || r.subName == "":
			if kw := dropKeyword[o.Kind]; kw != "" {
				o.drop = fmt.Sprintf("DROP %s IF EXISTS %s", kw, o.Identity)
			}
		case o.Kind == "table column":
			o.drop = fmt.Sprintf("ALTER TABLE IF EXISTS %s DROP COLUMN IF EXISTS %s", r.relName, r.subName)
		case o.Kind == "table constraint":
			o.drop = fmt.Sprintf("ALTER TABLE IF EXISTS %s DROP CONSTRAINT IF EXISTS %s", r.relName, r.subName)
		case o.Kind == "trigger":
			o.drop = fmt.Sprintf("DROP TRIGGER IF EXISTS %s ON %s", r.subName, r.relName)
		case o.Kind == "default value":
			o.drop = fmt.Sprintf("ALTER TABLE IF EXISTS %s ALTER COLUMN %s DROP DEFAULT", r.relName, r.subName)
		}
		out = append(out, o)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.depth != b.depth {
			return a.depth > b.depth
		}
		if dropFirst(a.Kind) != dropFirst(b.Kind) {
			return dropFirst(a.Kind) < dropFirst(b.Kind)
		}
		return a.Identity < b.Identity
	})
	return out, nil
}

// ownViews returns the names of the views online made in version schema
// vs: those of plan when it lists them; for a plan of raw SQL (whose views
// were read from the catalog at publish) or none, the views of vs named
// after a table of the migrated schema, which is how publish names them.
func (e *Engine) ownViews(ctx context.Context, vs string, plan *operations.Plan) ([]string, error) {
	if plan != nil && !plan.RawSQL && len(plan.Views) > 0 {
		out := make([]string, len(plan.Views))
		for i, v := range plan.Views {
			out[i] = v.Name
		}
		return out, nil
	}
	rows, err := e.conn.Query(ctx, `
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind = 'v' AND EXISTS (
	SELECT 1 FROM pg_class t JOIN pg_namespace tn ON tn.oid = t.relnamespace
	WHERE tn.nspname = $2 AND t.relname = c.relname AND t.relkind IN ('r', 'p'))
ORDER BY 1`, vs, e.cfg.Schema)
	if err != nil {
		return nil, fmt.Errorf("list the views of version schema %s: %w", vs, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, rows.Err()
}

// schemaDrop says how a command drops a version schema: the statements
// (objects of others the user allowed, deepest first; then online's views
// one by one; then the schema, never with CASCADE, so that an object that
// appears after the check makes the drop fail instead of vanishing) and
// the objects of others among them.
type schemaDrop struct {
	SQL     []string
	Dropped []ForeignObject
}

// versionSchemaDrop checks version schema vs before any change: objects
// online did not make in it or on its views make it refuse with
// *DependentsError, unless Config.DropDependents allows dropping exactly
// those. plan is the migration that published vs (nil when unknown).
func (e *Engine) versionSchemaDrop(ctx context.Context, command, migration, vs string, plan *operations.Plan) (*schemaDrop, error) {
	d := &schemaDrop{}
	if vs == "" {
		return d, nil
	}
	ok, err := e.schemaExists(ctx, vs)
	if err != nil || !ok {
		return d, err
	}
	views, err := e.ownViews(ctx, vs, plan)
	if err != nil {
		return nil, err
	}
	objs, err := e.foreignObjects(ctx, vs, views)
	if err != nil {
		return nil, err
	}
	if len(objs) > 0 {
		manual := false
		for _, o := range objs {
			manual = manual || o.drop == ""
		}
		if !e.cfg.DropDependents || manual {
			return nil, &DependentsError{Migration: migration, Command: command, VersionSchema: vs, Objects: objs}
		}
		for _, o := range objs {
			d.SQL = append(d.SQL, o.drop)
		}
		d.Dropped = objs
	}
	sort.Strings(views)
	for _, v := range views {
		d.SQL = append(d.SQL, "DROP VIEW IF EXISTS "+pg.Ident(vs, v))
	}
	d.SQL = append(d.SQL, "DROP SCHEMA IF EXISTS "+pg.Ident(vs))
	return d, nil
}

// logDropped says which objects of others a command dropped, as
// --drop-dependents asked.
func (e *Engine) logDropped(migration string, objs []ForeignObject) {
	for _, o := range objs {
		e.log.Warn().Str(keyMigration, migration).Str("kind", o.Kind).Str("object", o.Identity).Str("owner", o.Owner).
			Msg("dropped, as --drop-dependents asked: " + o.String())
	}
}
