package diff

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/schema"
)

// sqlOp is one change diff writes as an "sql" operation: the objects that
// no other operation creates (views, sequences, functions, triggers,
// policies, other schemas...), with the statements that undo it.
type sqlOp struct {
	what       string // for the messages: "view public.v"
	up, down   string
	onComplete bool   // destroys what the old version may still use
	comment    string // REVIEW notes
	// early marks what the operations may need (a domain, a sequence a
	// default names): it goes in a migration before them.
	early bool
	// needs lists the tables ("t") and columns ("t.c") a created view or
	// policy depends on.
	needs []string
	// recreates is the view ("view v") or policy ("policy t.p") a
	// creation makes.
	recreates string
}

// Plan writes the migration from one snapshot to another. Operations of
// the format come first; the differences only "sql" operations express
// (they must be alone in their migration) are written when nothing else is
// left, and until then listed as what the next migration will do.
func Plan(from, to *Snapshot, renames []Rename) (*Result, error) {
	res, err := compare(from.Schema, to.Schema, renames, from.Objects, to.Objects)
	if err != nil {
		return nil, err
	}
	// A table dropped here but present in another schema of the desired
	// file was most likely moved: dropping it would lose its rows.
	mv := moves(from, to)
	kept := res.Ops[:0]
	for _, o := range res.Ops {
		f := fields(o.Body)
		if o.Kind == "drop_table" && mv[[2]string{from.Schema.Name, f["name"]}] != "" {
			continue // moved to another schema by an sql operation
		}
		if movedInto(mv, to.Schema.Name, f["table"]) || (o.Kind == "create_table" && movedInto(mv, to.Schema.Name, f["name"])) {
			continue // moved here by an sql operation, with its indexes and constraints
		}
		if o.Kind == "drop_table" {
			if s := otherSchemaOf(to, from.Schema.Name, fields(o.Body)["name"]); s != "" {
				res.Unsupported = append(res.Unsupported, fmt.Sprintf("table %s is not dropped: the desired file has a table %s in schema %s; a move between schemas is not expressed (ALTER TABLE ... SET SCHEMA by hand)", fields(o.Body)["name"], fields(o.Body)["name"], s))
				continue
			}
		}
		kept = append(kept, o)
	}
	res.Ops = kept
	// Views and policies that depend on what the operations drop or
	// rewrite must go first, even unchanged: complete would fail on them.
	touched := touchedBy(res.Ops)
	forced := dependentsOf(from, touched)
	ops := sqlPass(from, to, res, forced)
	if early := slices.DeleteFunc(slices.Clone(ops), func(o sqlOp) bool { return !o.early }); len(res.Ops) > 0 && len(early) > 0 {
		// Domains and sequences first, alone: the operations may use
		// them.
		for _, o := range res.Ops {
			res.Unsupported = append(res.Unsupported, fmt.Sprintf("%s: written by the next migration, once the domains and sequences this one creates exist: run online diff again once this one is complete", o.Kind))
		}
		res.Ops, res.Review = nil, 0
		for _, o := range ops {
			if !o.early {
				res.Unsupported = append(res.Unsupported, fmt.Sprintf("%s: written by a later migration: run online diff again once this one is complete", o.what))
			}
		}
		ops = early
	} else if len(res.Ops) > 0 && len(ops) > 0 && (dropsWhatViewsUse(from, to, res.Ops) || len(forced) > 0) {
		// A view or policy that changes depends on what the operations
		// drop: complete would fail. The sql operations go first, and
		// the rest waits for the next migration.
		for _, o := range res.Ops {
			res.Unsupported = append(res.Unsupported, fmt.Sprintf("%s: written by the next migration, once the views and policies that depend on what it drops are replaced by this one: run online diff again once this one is complete", o.Kind))
		}
		res.Ops, res.Review = nil, 0
		// What needs a table or column the current schema lacks waits
		// too: the operations put it there.
		kept := ops[:0]
		for _, o := range ops {
			if o.recreates != "" && forced[o.recreates] && dependsOn(o.needs, touched) {
				res.Unsupported = append(res.Unsupported, fmt.Sprintf("%s: created again by a later migration, once the operations that need it gone have run: run online diff again once this one is complete", o.what))
				continue
			}
			if missing := missingIn(from, o.needs); missing != "" {
				res.Unsupported = append(res.Unsupported, fmt.Sprintf("%s: written by a later migration, once %s exists: run online diff again once this one is complete", o.what, missing))
				continue
			}
			if strings.HasSuffix(o.what, "(dropped)") && to.Objects != nil {
				o.comment = strings.TrimPrefix(o.comment+"; dropped before what it depends on changes: until a later migration creates its new definition, it is missing", "; ")
			}
			kept = append(kept, o)
		}
		ops = kept
	}
	if len(res.Ops) > 0 {
		for _, o := range ops {
			res.Unsupported = append(res.Unsupported, fmt.Sprintf("%s: written by the next migration (an sql operation must be alone in its migration): run online diff again once this one is complete", o.what))
		}
		return res, nil
	}
	for _, o := range ops {
		body := mapping("up", block(o.up))
		if o.onComplete {
			set(body, "onComplete", boolean(true), "")
		} else {
			set(body, "down", block(o.down), "")
		}
		c := o.what
		if o.comment != "" {
			c += "\nREVIEW: " + o.comment
			res.Review++
		}
		res.Ops = append(res.Ops, Op{Kind: "sql", Body: body, Comment: c})
	}
	return res, nil
}

// movedInto is true when table is one that a move brings into schema.
func movedInto(mv map[[2]string]string, schema, table string) bool {
	if table == "" {
		return false
	}
	for k, to := range mv {
		if to == schema && k[1] == table {
			return true
		}
	}
	return false
}

// block is a string written as a literal block when it spans lines.
func block(s string) *yaml.Node {
	n := str(s)
	if strings.Contains(s, "\n") {
		n.Style = yaml.LiteralStyle
	}
	return n
}

var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_$]*$`)

// quoteIdent quotes a name as PostgreSQL's quote_ident does (keywords
// aside), to match the catalog's keys.
func quoteIdent(s string) string {
	if plainIdent.MatchString(s) {
		return s
	}
	return pg.Ident(s)
}

// setDumpLines are the lines of a pg_dump that set session state: an sql
// operation runs on online's own session, which must keep its settings.
var setDumpLines = regexp.MustCompile(`(?m)^(SET |SELECT pg_catalog\.set_config\().*$`)

func sqlPass(from, to *Snapshot, res *Result, forced map[string]bool) []sqlOp {
	fo, tob := from.Objects, to.Objects
	if fo == nil || tob == nil {
		return nil
	}
	sn := to.Schema.Name
	var pre, mid, post, last []sqlOp

	// Other schemas: a new one is created from its dump, a gone one
	// dropped at complete, one on both sides changed with plain DDL. A
	// table that only changed schema is moved.
	fromSchemas := map[string]bool{}
	for _, s := range from.Schemas {
		fromSchemas[s] = true
	}
	toSchemas := map[string]bool{}
	for _, s := range to.Schemas {
		toSchemas[s] = true
	}
	mv := moves(from, to)
	movedIn, movedOut := map[string]map[string]bool{}, map[string]map[string]bool{}
	for k, dest := range mv {
		if movedOut[k[0]] == nil {
			movedOut[k[0]] = map[string]bool{}
		}
		if movedIn[dest] == nil {
			movedIn[dest] = map[string]bool{}
		}
		movedOut[k[0]][k[1]], movedIn[dest][k[1]] = true, true
	}
	pre = append(pre, moveOps(mv)...)
	for _, s := range to.Schemas {
		if s == sn {
			continue
		}
		if !fromSchemas[s] {
			if len(movedIn[s]) > 0 {
				// The schema comes empty, the tables moved into it;
				// what else it holds, the next migration creates.
				pre = slices.Insert(pre, 0, sqlOp{what: "schema " + s, up: "CREATE SCHEMA " + pg.Ident(s), down: "DROP SCHEMA " + pg.Ident(s)})
				continue
			}
			ddl := strings.TrimSpace(setDumpLines.ReplaceAllString(tob.SchemaDDL[s], ""))
			ddl = regexp.MustCompile(`\n{3,}`).ReplaceAllString(ddl, "\n\n")
			mid = append(mid, sqlOp{what: "schema " + s, up: ddl, down: "DROP SCHEMA " + pg.Ident(s) + " CASCADE"})
			continue
		}
		f, t := from.Others[s], to.Others[s]
		if f == nil || t == nil {
			for _, d := range from.Catalog.schemaPart(s).Differences(to.Catalog.schemaPart(s)) {
				res.Unsupported = append(res.Unsupported, fmt.Sprintf("schema %s: %s; diff writes the migration of one schema at a time: run online --schema %s diff FILE for it", s, d, s))
			}
			continue
		}
		a, b, c, d := tablesPass(s, f, t, movedIn[s], movedOut[s], res)
		pre, mid, post, last = append(pre, a...), append(mid, b...), append(post, c...), append(last, d...)
		a, b, c, d = objectsPass(s, f.Schema, t.Schema, f.Objects, t.Objects, false, movedIn[s], nil, res)
		pre, mid, post, last = append(pre, a...), append(mid, b...), append(post, c...), append(last, d...)
	}
	for _, s := range from.Schemas {
		if s != sn && !toSchemas[s] {
			last = append(last, sqlOp{what: "schema " + s + " (dropped)", up: "DROP SCHEMA " + pg.Ident(s) + " CASCADE", onComplete: true,
				comment: "drops the schema and everything in it, at complete"})
		}
	}
	a, b, c, d := objectsPass(sn, from.Schema, to.Schema, fo, tob, true, movedIn[sn], forced, res)
	pre, mid, post, last = append(pre, a...), append(mid, b...), append(post, c...), append(last, d...)
	return slices.Concat(pre, mid, post, last)
}

// objectsPass writes the sql operations for the objects of schema sn
// (fs and ts its tables on each side, fo and tob its objects). managed is
// set for the managed schema, whose columns and constraints the
// structural pass leaves here; another schema's tables are tablesPass's.
//
// movedIn are the tables a move brings into sn: their owned sequences
// come with them.
//
// forced are the views ("view v") and policies ("policy t.p") to drop and
// create again although unchanged: the operations drop or rewrite what
// they depend on.
func objectsPass(sn string, fs, ts *schema.Schema, fo, tob *Objects, managed bool, movedIn, forced map[string]bool, res *Result) (pre, mid, post, last []sqlOp) {
	q := func(name string) string { return pg.Ident(sn, name) }
	// Triggers and policies that change or go are dropped first, created
	// again last.
	for _, kind := range []string{"trigger", "policy"} {
		fm, tm := fo.Triggers, tob.Triggers
		if kind == "policy" {
			fm, tm = fo.Policies, tob.Policies
		}
		for _, k := range slices.Sorted(maps.Keys(fm)) {
			if d, ok := tm[k]; !ok || d != fm[k] || forced[kind+" "+k] {
				pre = append(pre, sqlOp{what: kind + " " + k + " (dropped)", up: fo.Drops[kind+" "+k], down: fm[k]})
			}
		}
		for _, k := range slices.Sorted(maps.Keys(tm)) {
			if d, ok := fm[k]; !ok || d != tm[k] || forced[kind+" "+k] {
				post = append(post, sqlOp{what: kind + " " + k, up: tm[k], down: tob.Drops[kind+" "+k], needs: tob.Deps[kind+" "+k], recreates: kind + " " + k})
			}
		}
	}

	// Views: a changed one is dropped and created again (CREATE OR
	// REPLACE cannot drop or retype a column), dependents after what
	// they depend on (creation order).
	changedView := func(a, b *View) bool {
		return forced["view "+a.Name] || a.Materialized != b.Materialized || a.Definition != b.Definition || a.Options != b.Options || !eqPtr(a.Comment, b.Comment)
	}
	var goneViews, newViews []*View
	for _, v := range fo.Views {
		if w := tob.Views[v.Name]; w == nil || changedView(v, w) {
			goneViews = append(goneViews, v)
		}
	}
	for _, v := range tob.Views {
		if w := fo.Views[v.Name]; w == nil || changedView(w, v) {
			newViews = append(newViews, v)
		}
	}
	slices.SortFunc(goneViews, func(a, b *View) int { return int(b.Order) - int(a.Order) })
	slices.SortFunc(newViews, func(a, b *View) int { return int(a.Order) - int(b.Order) })
	recreated := map[string]bool{}
	for _, v := range goneViews {
		recreated[v.Name] = true
		pre = append(pre, sqlOp{what: viewKind(v) + " " + v.Name + " (dropped)", up: "DROP " + viewKind(v) + " " + q(v.Name), down: createView(q, v, fo)})
	}
	for _, v := range newViews {
		recreated[v.Name] = true
		post = append(post, sqlOp{what: viewKind(v) + " " + v.Name, up: createView(q, v, tob), down: "DROP " + viewKind(v) + " " + q(v.Name), needs: tob.Deps["view "+v.Name], recreates: "view " + v.Name})
	}

	// Functions: CREATE OR REPLACE, before the triggers that call them.
	for _, sig := range slices.Sorted(maps.Keys(tob.Functions)) {
		if old, ok := fo.Functions[sig]; !ok {
			mid = append(mid, sqlOp{what: "function " + sig, up: tob.Functions[sig], down: dropRoutine(sig, tob.Functions[sig])})
		} else if old != tob.Functions[sig] {
			mid = append(mid, sqlOp{what: "function " + sig + " (changed)", up: tob.Functions[sig], down: old})
		}
	}
	for _, sig := range slices.Sorted(maps.Keys(fo.Functions)) {
		if _, ok := tob.Functions[sig]; !ok {
			last = append(last, sqlOp{what: "function " + sig + " (dropped)", up: dropRoutine(sig, fo.Functions[sig]), down: fo.Functions[sig]})
		}
	}

	// Domains: new ones early, gone ones last; a changed one is not
	// expressed.
	for _, n := range slices.Sorted(maps.Keys(tob.Domains)) {
		switch old, ok := fo.Domains[n]; {
		case !ok:
			mid = append(mid, sqlOp{what: "domain " + n, up: tob.Domains[n], down: "DROP DOMAIN " + q(n), early: true})
		case old != tob.Domains[n]:
			res.Unsupported = append(res.Unsupported, fmt.Sprintf("domain %s differs (%s); not expressed: change it by hand", n, tob.Domains[n]))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(fo.Domains)) {
		if _, ok := tob.Domains[n]; !ok {
			last = append(last, sqlOp{what: "domain " + n + " (dropped)", up: "DROP DOMAIN " + q(n), down: fo.Domains[n]})
		}
	}

	// Sequences: new, changed, gone. An identity column's sequence comes
	// and goes with its column; its options change all the same.
	for _, n := range slices.Sorted(maps.Keys(tob.Sequences)) {
		s, old := tob.Sequences[n], fo.Sequences[n]
		switch {
		case old == nil && s.Table != "" && movedIn[s.Table]:
			// moved with its table
		case old == nil && !s.Identity && !managed && s.Table != "" && fs.Tables[s.Table] == nil:
			// created with its new table (tablesPass)
		case old == nil && !s.Identity:
			up := "CREATE SEQUENCE " + q(n) + " " + s.options()
			if s.OwnedBy != "" {
				up += ";\nALTER SEQUENCE " + q(n) + " OWNED BY " + s.OwnedBy
				if col := ts.Tables[s.Table].Column(s.Column); col != nil && isSerial(col, s.Table) {
					// A column made serial: the sequence goes on from
					// the values it holds.
					up += fmt.Sprintf(";\nSELECT setval(%s, coalesce(max(%s), 0) + 1, false) FROM %s", pg.Literal(q(n)), pg.Ident(s.Column), q(s.Table))
				}
			}
			mid = append(mid, sqlOp{what: "sequence " + n, up: up, down: "DROP SEQUENCE " + q(n), early: s.OwnedBy == ""})
		case old == nil:
		case !old.sameParams(s):
			mid = append(mid, sqlOp{what: "sequence " + n + " (options)", up: "ALTER SEQUENCE " + q(n) + " " + s.options(), down: "ALTER SEQUENCE " + q(n) + " " + old.options()})
		}
		if old != nil && !s.Identity && !old.Identity && old.OwnedBy != s.OwnedBy {
			owner := func(o string) string {
				if o == "" {
					return "NONE"
				}
				return o
			}
			mid = append(mid, sqlOp{what: "sequence " + n + " (owned by)", up: "ALTER SEQUENCE " + q(n) + " OWNED BY " + owner(s.OwnedBy), down: "ALTER SEQUENCE " + q(n) + " OWNED BY " + owner(old.OwnedBy)})
		}
	}
	for _, n := range slices.Sorted(maps.Keys(fo.Sequences)) {
		s := fo.Sequences[n]
		if tob.Sequences[n] != nil || s.Identity {
			continue
		}
		if s.Table != "" && ts.Tables[s.Table] == nil {
			continue // dropped or moved with its table
		}
		// After the defaults that use it are gone (an earlier migration
		// dropped them).
		down := "CREATE SEQUENCE " + q(n) + " " + s.options()
		if s.OwnedBy != "" {
			down += ";\nALTER SEQUENCE " + q(n) + " OWNED BY " + s.OwnedBy
		}
		last = append(last, sqlOp{what: "sequence " + n + " (dropped)", up: "DROP SEQUENCE " + q(n), down: down})
	}

	// Columns of tables on both sides: identity, a serial's default,
	// collation. (The structural pass left these alone.)
	for _, name := range ts.TableNames() {
		tt, ft := ts.Tables[name], fs.Tables[name]
		if ft == nil {
			continue
		}
		for _, tc := range tt.Columns {
			if !managed {
				break // tablesPass's
			}
			fc := ft.Column(tc.Name)
			if fc == nil {
				continue
			}
			alter := "ALTER TABLE " + q(name) + " ALTER COLUMN " + pg.Ident(tc.Name) + " "
			if fc.Identity != tc.Identity {
				gen := func(k string) string {
					if k == "a" {
						return "ALWAYS"
					}
					return "BY DEFAULT"
				}
				// Both lists in the order they run.
				var up, down []string
				switch {
				case tc.Identity == "":
					up = append(up, alter+"DROP IDENTITY")
					if tc.Nullable {
						up = append(up, alter+"DROP NOT NULL")
						down = append(down, alter+"SET NOT NULL")
					}
					down = append(down, alter+"ADD GENERATED "+gen(fc.Identity)+" AS IDENTITY")
				case fc.Identity == "":
					if fc.Nullable {
						up = append(up, alter+"SET NOT NULL")
					}
					up = append(up, alter+"ADD GENERATED "+gen(tc.Identity)+" AS IDENTITY")
					down = append(down, alter+"DROP IDENTITY")
					if fc.Nullable {
						down = append(down, alter+"DROP NOT NULL")
					}
				default:
					up = append(up, alter+"SET GENERATED "+gen(tc.Identity))
					down = append(down, alter+"SET GENERATED "+gen(fc.Identity))
				}
				mid = append(mid, sqlOp{what: "column " + name + "." + tc.Name + " (identity)", up: strings.Join(up, ";\n"), down: strings.Join(down, ";\n")})
			}
			if isSerial(tc, name) && !eqPtr(fc.Default, tc.Default) {
				def := "nextval(" + pg.Literal(q(name+"_"+tc.Name+"_seq")) + "::regclass)"
				down := alter + "DROP DEFAULT"
				if fc.Default != nil {
					down = alter + "SET DEFAULT " + *fc.Default
				}
				post = append(post, sqlOp{what: "column " + name + "." + tc.Name + " (serial default)", up: alter + "SET DEFAULT " + def, down: down})
			}
			if len(ft.KeyColumns()) == 0 {
				// No key: what alter_column would rewrite changes in
				// place (the structural pass left it).
				c := *fc
				c.Type, c.Collation = tc.Type, tc.Collation
				if !tc.Nullable {
					c.Nullable = false
				}
				mid = append(mid, alterColumnDDL("ALTER TABLE "+q(name)+" ", sn, name, fc, &c, res)...)
			}
		}
		if !eqPtr(ft.Comment, tt.Comment) && managed {
			c := func(s *string) string {
				if s == nil {
					return "NULL"
				}
				return pg.Literal(*s)
			}
			post = append(post, sqlOp{what: "table " + name + " (comment)", up: "COMMENT ON TABLE " + q(name) + " IS " + c(tt.Comment), down: "COMMENT ON TABLE " + q(name) + " IS " + c(ft.Comment)})
		}
		if fo.RLS[name] != tob.RLS[name] {
			rls := func(f string) string {
				s := "ALTER TABLE " + q(name) + " "
				if strings.Contains(f, "enabled") {
					s += "ENABLE ROW LEVEL SECURITY, "
				} else {
					s += "DISABLE ROW LEVEL SECURITY, "
				}
				if strings.Contains(f, "forced") {
					return s + "FORCE ROW LEVEL SECURITY"
				}
				return s + "NO FORCE ROW LEVEL SECURITY"
			}
			post = append(post, sqlOp{what: "table " + name + " (row level security)", up: rls(tob.RLS[name]), down: rls(fo.RLS[name])})
		}
	}
	// Constraints the structural pass could not write as create_constraint
	// (NOT VALID, a name a relation has, exclusion, another schema's table).
	for _, name := range ts.TableNames() {
		tt, ft := ts.Tables[name], fs.Tables[name]
		if ft == nil || !managed {
			continue
		}
		// An index or constraint whose definition changed under the same
		// name: no operation replaces one (create_index would meet the
		// old name), so it is dropped and created again.
		for _, in := range slices.Sorted(maps.Keys(tt.Indexes)) {
			ix, old := tt.Indexes[in], ft.Indexes[in]
			if ix.Constraint != "" || old == nil || old.Constraint != "" || old.Definition == ix.Definition {
				continue
			}
			pre = append(pre, sqlOp{what: "index " + in + " (changed, dropped)", up: "DROP INDEX " + q(in), down: old.Definition})
			post = append(post, sqlOp{what: "index " + in + " (changed)", up: ix.Definition, down: "DROP INDEX " + q(in),
				comment: "built in the migration's transaction (not CONCURRENTLY): it blocks writes to its table while it builds"})
		}
		for _, cn := range slices.Sorted(maps.Keys(tt.Constraints)) {
			con, old := tt.Constraints[cn], ft.Constraints[cn]
			if old == nil || (old.Type == con.Type && old.Definition == con.Definition) {
				continue
			}
			pre = append(pre, sqlOp{what: "constraint " + cn + " on " + name + " (changed, dropped)", up: "ALTER TABLE " + q(name) + " DROP CONSTRAINT " + pg.Ident(cn),
				down: "ALTER TABLE " + q(name) + " ADD CONSTRAINT " + pg.Ident(cn) + " " + old.Definition})
			post = append(post, sqlOp{what: "constraint " + cn + " on " + name + " (changed)", up: "ALTER TABLE " + q(name) + " ADD CONSTRAINT " + pg.Ident(cn) + " " + con.Definition,
				down: "ALTER TABLE " + q(name) + " DROP CONSTRAINT " + pg.Ident(cn)})
		}
		if len(ft.KeyColumns()) == 0 {
			// No key to rewrite by: a constraint that goes is dropped in
			// place (the structural pass left it).
			for _, cn := range slices.Sorted(maps.Keys(ft.Constraints)) {
				con := ft.Constraints[cn]
				if tt.Constraints[cn] != nil || con.Type == "p" || droppedWithColumn(tt, con.Columns) {
					continue
				}
				pre = append(pre, sqlOp{what: "constraint " + cn + " on " + name + " (dropped)", up: "ALTER TABLE " + q(name) + " DROP CONSTRAINT " + pg.Ident(cn),
					down: "ALTER TABLE " + q(name) + " ADD CONSTRAINT " + pg.Ident(cn) + " " + con.Definition})
			}
		}
		for _, cn := range slices.Sorted(maps.Keys(tt.Constraints)) {
			con := tt.Constraints[cn]
			if ft.Constraints[cn] == nil && sqlConstraint(ts.Relations, con.Name, con.Type, con.Definition, con.RefSchema != sn) {
				mid = append(mid, sqlOp{what: "constraint " + cn + " on " + name,
					up:   "ALTER TABLE " + q(name) + " ADD CONSTRAINT " + pg.Ident(cn) + " " + con.Definition,
					down: "ALTER TABLE " + q(name) + " DROP CONSTRAINT " + pg.Ident(cn)})
			}
		}
	}

	// Partitions, then the indexes of partitions and materialized views.
	for _, n := range slices.Sorted(maps.Keys(tob.Partitions)) {
		if fo.Partitions[n] == "" {
			mid = append(mid, sqlOp{what: "partition " + n, up: tob.Partitions[n], down: "DROP TABLE " + q(n)})
		} else if fo.Partitions[n] != tob.Partitions[n] {
			res.Unsupported = append(res.Unsupported, fmt.Sprintf("partition %s: bounds or parent differ (%s); detach and attach it by hand", n, tob.Partitions[n]))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(fo.Partitions)) {
		if tob.Partitions[n] == "" {
			last = append(last, sqlOp{what: "partition " + n + " (dropped)", up: "DROP TABLE " + q(n), onComplete: true, comment: "drops the partition and its rows, at complete"})
		}
	}
	for _, n := range slices.Sorted(maps.Keys(fo.OtherIndexes)) {
		ix := fo.OtherIndexes[n]
		if recreated[ix.Table] {
			continue // goes with its materialized view
		}
		if t, ok := tob.OtherIndexes[n]; !ok || t.Definition != ix.Definition {
			pre = append(pre, sqlOp{what: "index " + n + " (dropped)", up: "DROP INDEX " + q(n), down: ix.Definition})
		}
	}
	for _, n := range slices.Sorted(maps.Keys(tob.OtherIndexes)) {
		ix := tob.OtherIndexes[n]
		if recreated[ix.Table] {
			continue
		}
		if f, ok := fo.OtherIndexes[n]; !ok || f.Definition != ix.Definition {
			post = append(post, sqlOp{what: "index " + n, up: ix.Definition, down: "DROP INDEX " + q(n),
				comment: "built in the migration's transaction (not CONCURRENTLY): it blocks writes to its table while it builds"})
		}
	}
	return pre, mid, post, last
}

// dropRoutine drops a function or, for a procedure's definition, a
// procedure (DROP FUNCTION refuses one).
func dropRoutine(sig, def string) string {
	if strings.HasPrefix(strings.TrimSpace(def), "CREATE OR REPLACE PROCEDURE") {
		return "DROP PROCEDURE " + sig
	}
	return "DROP FUNCTION " + sig
}

func viewKind(v *View) string {
	if v.Materialized {
		return "MATERIALIZED VIEW"
	}
	return "VIEW"
}

// createView is the SQL that creates a view as objs has it, with its
// comment and (a materialized view's) indexes.
func createView(q func(string) string, v *View, objs *Objects) string {
	s := "CREATE " + viewKind(v) + " " + q(v.Name)
	if v.Options != "" {
		s += " WITH (" + v.Options + ")"
	}
	s += " AS\n" + v.Definition
	if v.Comment != nil {
		s += ";\nCOMMENT ON " + viewKind(v) + " " + q(v.Name) + " IS " + pg.Literal(*v.Comment)
	}
	for _, n := range slices.Sorted(maps.Keys(objs.OtherIndexes)) {
		if ix := objs.OtherIndexes[n]; ix.Table == v.Name {
			s += ";\n" + ix.Definition
		}
	}
	return s
}

// sqlConstraint tells the constraints that create_constraint cannot write:
// NOT VALID ones (it validates), those named like a relation (its name
// check takes every constraint name for an index's), exclusion
// constraints, and foreign keys to another schema.
func sqlConstraint(relations map[string]bool, name, typ, def string, otherSchema bool) bool {
	switch {
	case strings.HasSuffix(def, " NOT VALID"):
		return true
	case typ == "x":
		return true
	case typ == "f" && otherSchema:
		return true
	case (typ == "c" || typ == "f") && relations[name]:
		return true
	}
	return false
}

// schemaPart is the part of a catalog in schema s.
func (c Catalog) schemaPart(s string) Catalog {
	prefix := quoteIdent(s) + "."
	out := Catalog{}
	for k, v := range c {
		_, rest, _ := strings.Cut(k, " ")
		if strings.HasPrefix(k, "materialized view ") || strings.HasPrefix(k, "foreign table ") {
			_, rest, _ = strings.Cut(rest, " ")
		}
		if k == "schema "+quoteIdent(s) || strings.HasPrefix(rest, prefix) {
			out[k] = v
		}
	}
	return out
}

// dropsWhatViewsUse is true when an operation drops or rewrites a table or
// column that a view or policy of the current schema uses, one that the
// desired schema changes or drops.
func dropsWhatViewsUse(from, to *Snapshot, ops []Op) bool {
	touched := touchedBy(ops)
	fo, tob := from.Objects, to.Objects
	for k, deps := range fo.Deps {
		kind, name, _ := strings.Cut(k, " ")
		changed := false
		if kind == "view" {
			v, w := fo.Views[name], tob.Views[name]
			changed = w == nil || v == nil || v.Definition != w.Definition || v.Options != w.Options || v.Materialized != w.Materialized
		} else {
			changed = fo.Policies[name] != tob.Policies[name]
		}
		if changed && dependsOn(deps, touched) {
			return true
		}
	}
	return false
}

// dependsOn is true when one of deps (tables "t", columns "t.c") is
// touched, or its table is.
func dependsOn(deps []string, touched map[string]bool) bool {
	for _, d := range deps {
		table, _, _ := strings.Cut(d, ".")
		if touched[d] || touched[table] {
			return true
		}
	}
	return false
}

// dependentsOf are the views and policies of the current schema that
// depend on something touched.
func dependentsOf(from *Snapshot, touched map[string]bool) map[string]bool {
	out := map[string]bool{}
	if from.Objects == nil {
		return out
	}
	for k, deps := range from.Objects.Deps {
		if dependsOn(deps, touched) {
			out[k] = true
		}
	}
	return out
}

// touchedBy are the tables ("t") and columns ("t.c") the operations drop
// or rewrite (at complete, the old column goes).
func touchedBy(ops []Op) map[string]bool {
	touched := map[string]bool{}
	for _, o := range ops {
		f := fields(o.Body)
		switch o.Kind {
		case "drop_table":
			touched[f["name"]] = true
		case "drop_column":
			touched[f["table"]+"."+f["column"]] = true
		case "alter_column":
			// A rewrite drops the old column at complete.
			if f["type"] != "" || f["nullable"] == "false" || f["up"] != "" || f["collation"] != "" {
				touched[f["table"]+"."+f["column"]] = true
			}
		case "drop_multicolumn_constraint", "create_constraint":
			// Each column with an up or down is rewritten.
			for i := 0; i+1 < len(o.Body.Content); i += 2 {
				if k := o.Body.Content[i].Value; k == "up" || k == "down" {
					m := o.Body.Content[i+1]
					for j := 0; j+1 < len(m.Content); j += 2 {
						touched[f["table"]+"."+m.Content[j].Value] = true
					}
				}
			}
		}
	}
	return touched
}

// fields are the scalar fields of an operation's body.
func fields(n *yaml.Node) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i+1].Kind == yaml.ScalarNode {
			m[n.Content[i].Value] = n.Content[i+1].Value
		}
	}
	return m
}

// otherSchemaOf names a schema other than managed where the snapshot has a
// table of that name.
func otherSchemaOf(s *Snapshot, managed, table string) string {
	for _, sc := range s.Schemas {
		if sc != managed {
			if _, ok := s.Catalog["table "+quoteIdent(sc)+"."+quoteIdent(table)]; ok {
				return sc
			}
		}
	}
	return ""
}

// missingIn names the first of the tables and columns that s lacks.
func missingIn(s *Snapshot, needs []string) string {
	for _, n := range needs {
		t, c, _ := strings.Cut(n, ".")
		tab := s.Schema.Tables[t]
		if tab == nil && !s.Schema.Relations[t] {
			return "table " + t
		}
		if c != "" && tab != nil && tab.Column(c) == nil {
			return "column " + n
		}
	}
	return ""
}
