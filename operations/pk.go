package operations

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/sqllex"
	"github.com/onlinepg/online/schema"
)

// A rewrite of a key column (a primary key column, or a column that other
// tables' foreign keys reference) cannot just drop the old column at
// complete: the key and every foreign key pointing at it go with it, and
// the foreign keys block the drop besides. So, before the new version is
// published, the key is rebuilt on the new column (a unique index built
// concurrently, NOT NULL proven by the validated check every NOT NULL
// rewrite gets) and each referencing foreign key is added again, pointing
// at the new column (NOT VALID, then validated). Until complete both sets
// of constraints hold: the sync triggers keep old and new column equal in
// every row, so a row satisfies one foreign key exactly when it satisfies
// the other. complete then swaps them in one short transaction that changes
// only the catalog: drop the old foreign keys and key, swap the columns,
// attach the index as the key, give the new foreign keys the old names.

// keyRef is a foreign key that references rewritten columns.
type keyRef struct {
	table *schema.Table // the referencing table, as the new version sees it
	con   *schema.Constraint
	tmp   string // name of its copy on the new columns until complete
}

// referencingKeys lists the foreign keys of the new version's tables that
// reference any of the physical columns cols of t. A table the new version
// drops, or a referencing column it drops, is left out: complete drops it,
// and the foreign key with it, before the key is swapped.
func (c *Compiler) referencingKeys(t *schema.Table, cols ...string) []keyRef {
	// A foreign key references columns that a unique index of t covers
	// (PostgreSQL requires one, and keeps it while the key exists): a
	// column in none, in either version of t, has no referrers. This
	// spares a walk over every table of the schema for each change of a
	// column, which made a file of many changes compile in quadratic time.
	if !inUniqueIndex(t, cols) && !inUniqueIndex(c.oldTable(t), cols) {
		return nil
	}
	var out []keyRef
	for _, name := range c.Schema.TableNames() {
		other := c.Schema.Tables[name]
		if other.Created {
			continue
		}
		for _, n := range slices.Sorted(maps.Keys(other.Constraints)) {
			con := other.Constraints[n]
			if con.Type != "f" || con.RefSchema != c.Opts.Schema || con.RefTableName != t.Physical {
				continue
			}
			hit := false
			for _, rc := range con.RefColumns {
				hit = hit || containsString(cols, rc)
			}
			if !hit {
				continue
			}
			present := true
			for _, fc := range con.Columns {
				present = present && (other.ColumnByPhysical(fc) != nil || c.rewriteOf(other, fc) != nil)
			}
			if present {
				out = append(out, keyRef{table: other, con: con})
			}
		}
	}
	return out
}

// inUniqueIndex reports whether a unique index of t covers any of cols
// (physical names).
func inUniqueIndex(t *schema.Table, cols []string) bool {
	if t == nil {
		return false
	}
	for _, ix := range t.Indexes {
		if !ix.Unique && !ix.Primary {
			continue
		}
		for _, col := range cols {
			if containsString(ix.Columns, col) {
				return true
			}
		}
	}
	return false
}

// primaryIndex returns the primary key index of t when it covers the
// physical column, or nil.
func primaryIndex(t *schema.Table, phys string) *schema.Index {
	for _, ix := range t.Indexes {
		if ix.Primary && containsString(ix.Columns, phys) {
			return ix
		}
	}
	return nil
}

// checkKeyRewrite refuses, before anything runs, a rewrite of a key column
// that online cannot carry out: it runs for every change that rewrites
// col, so that a type set by a later operation is checked too.
func (c *Compiler) checkKeyRewrite(t *schema.Table, col *schema.Column, r *rewrite, newType string, nullable *bool) error {
	if r.identity != "" && integerWidth(newType) == 0 {
		return errField("type", "column %q is an identity column, whose type must be smallint, integer or bigint; %q is not", col.Name, newType)
	}
	if r.identity != "" && nullable != nil && *nullable {
		return errField("nullable", "column %q is an identity column, which PostgreSQL keeps NOT NULL", col.Name)
	}
	if ext := t.ForeignReferrers[r.oldPhys]; len(ext) > 0 {
		return errField("column", "column %q of table %q is referenced by foreign key %s in another schema; online changes one schema at a time and cannot rebuild it on the new column: drop it first, and add it again after complete", col.Name, t.Name, strings.Join(ext, ", foreign key "))
	}
	pk := primaryIndex(t, r.oldPhys)
	refs := c.referencingKeys(t, r.oldPhys)
	if pk == nil && len(refs) == 0 {
		return nil
	}
	if t.Partitioned {
		return errField("column", "column %q of partitioned table %q is a key column; rewriting it needs a unique index built concurrently, which PostgreSQL cannot do on partitioned tables", col.Name, t.Name)
	}
	if pk != nil {
		if nullable != nil && *nullable {
			return errField("nullable", "column %q is in the primary key %q of table %q, whose columns are NOT NULL", col.Name, pk.Constraint, t.Name)
		}
		if pk.Deferrable {
			return errField("column", "the primary key %q of table %q is deferrable; rewriting a column of a deferrable primary key is not supported yet", pk.Constraint, t.Name)
		}
	}
	for _, ref := range refs {
		if ref.table.Partitioned {
			return errField("column", "column %q is referenced by foreign key %q of partitioned table %q; PostgreSQL cannot add that foreign key again NOT VALID, which rewriting the column needs", col.Name, ref.con.Name, ref.table.Name)
		}
		for i, rc := range ref.con.RefColumns {
			if rc != r.oldPhys || i >= len(ref.con.Columns) {
				continue
			}
			if rw := c.rewriteOf(ref.table, ref.con.Columns[i]); rw != nil {
				return errField("column", "column %q of table %q, which this migration rewrites, references column %q of table %q through foreign key %q; rewriting both in one migration is not supported yet: change %s.%s in one migration and %s.%s in the next", rw.col.Name, ref.table.Name, col.Name, t.Name, ref.con.Name, t.Name, col.Name, ref.table.Name, rw.col.Name)
			}
			fc := ref.table.ColumnByPhysical(ref.con.Columns[i])
			if !comparableKeyTypes(fc.Type, newType) {
				return errField("type", "column %q (%s) of table %q references column %q through foreign key %q, and PostgreSQL cannot compare %s with %s in a foreign key; change the referencing column first", fc.Name, fc.Type, ref.table.Name, col.Name, ref.con.Name, fc.Type, newType)
			}
		}
	}
	return nil
}

// checkReferencingRewrite refuses a rewrite of a column whose foreign key
// references a column this migration already rewrites (the other order is
// caught by checkKeyRewrite): the foreign key would be rebuilt on the old
// target, which complete drops.
func (c *Compiler) checkReferencingRewrite(t *schema.Table, col *schema.Column) error {
	for _, n := range slices.Sorted(maps.Keys(t.Constraints)) {
		con := t.Constraints[n]
		if con.Type != "f" || con.RefSchema != c.Opts.Schema || !containsString(con.Columns, col.Physical) {
			continue
		}
		for _, r := range c.rewrites {
			if !r.added && r.table.Physical == con.RefTableName && containsString(con.RefColumns, r.oldPhys) {
				return errField("column", "column %q references column %q of table %q through foreign key %q, and an earlier operation of this migration rewrites that column; rewriting both in one migration is not supported yet: change %s.%s in one migration and %s.%s in the next", col.Name, r.col.Name, r.table.Name, con.Name, r.table.Name, r.col.Name, t.Name, col.Name)
			}
		}
	}
	return nil
}

// rewriteOf returns the pending rewrite of the old physical column of t.
func (c *Compiler) rewriteOf(t *schema.Table, oldPhys string) *rewrite {
	for _, r := range c.rewrites {
		if r.table.Physical == t.Physical && !r.added && r.oldPhys == oldPhys {
			return r
		}
	}
	return nil
}

// keyWork is what the rewrites of one table need beyond their columns: the
// contract statements that run, in the same transaction as the column
// swaps, before them (pre) and after them (post).
type keyWork struct {
	pre, post []string
}

// planKeys adds the finish steps that rebuild t's primary key and the
// foreign keys referencing its rewritten columns, and returns the contract
// statements around the column swaps; nil when no rewritten column of t is
// a key column.
func (c *Compiler) planKeys(t *schema.Table, rs []*rewrite) (*keyWork, error) {
	rename := map[string]string{}
	var olds []string
	for _, r := range rs {
		if !r.added {
			rename[r.oldPhys] = r.newPhys
			olds = append(olds, r.oldPhys)
		}
	}
	var pk *schema.Index
	for _, o := range olds {
		if pk = primaryIndex(t, o); pk != nil {
			break
		}
	}
	refs := c.referencingKeys(t, olds...)
	if pk == nil && len(refs) == 0 {
		return nil, nil
	}
	// A foreign key this migration adds to the old key column would block
	// its drop at complete; one to the new column would be added before
	// the unique index it needs exists.
	target := "REFERENCES " + c.Qualified(t.Physical) + " ("
	for _, steps := range [][]Step{c.plan.Expand, c.plan.Finish} {
		for _, s := range steps {
			for _, q := range s.SQL {
				if strings.Contains(q, target) {
					return nil, fmt.Errorf("operation %d adds a foreign key referencing table %q, whose key column this migration rewrites; add that foreign key in a later migration", s.Op, t.Name)
				}
			}
		}
	}
	kw := &keyWork{}
	table := c.Qualified(t.Physical)
	tableNow := c.Qualified(c.TableNow(t))
	// The tables are locked up front, the referenced one first, in the
	// order applications that write parents before children take them.
	locks := []string{fmt.Sprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", tableNow)}
	locked := map[string]bool{t.Physical: true}
	if pk != nil {
		tmp := ShortName("_online_" + pk.Name)
		c.names[tmp] = true
		_, using, ok := strings.Cut(pk.Definition, " USING ")
		if !ok {
			return nil, fmt.Errorf("table %q: cannot read the definition of primary key index %q", t.Name, pk.Name)
		}
		c.Finish(Step{
			Do: fmt.Sprintf("build the unique index of primary key %s on the new columns of %s", pk.Constraint, t.Name),
			SQL: []string{
				"DROP INDEX CONCURRENTLY IF EXISTS " + c.Qualified(tmp),
				fmt.Sprintf("CREATE UNIQUE INDEX CONCURRENTLY %s ON %s USING %s", pg.Ident(tmp), table, sqllex.RenameIdentifiers(using, rename)),
			},
			Undo:      c.dropIndexInTx(c.Opts.Schema, tmp),
			UndoAfter: c.dropIndexAfter(c.Opts.Schema, tmp),
			Lock:      "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
			NoTx:      true,
		})
		// Dropping the old key frees its name for the index; NOT NULL of
		// the new columns is set before it is attached (the swaps do it,
		// without a scan), so attaching scans nothing either.
		kw.pre = append(kw.pre, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", tableNow, pg.Ident(pk.Constraint)))
		kw.post = append(kw.post, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s PRIMARY KEY USING INDEX %s", tableNow, pg.Ident(pk.Constraint), pg.Ident(tmp)))
		if pk.ReplicaIdentity {
			kw.post = append(kw.post, fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY USING INDEX %s", tableNow, pg.Ident(pk.Constraint)))
		}
	}
	for _, ref := range refs {
		tail, ok := fkTail(ref.con.Definition)
		if !ok {
			return nil, fmt.Errorf("foreign key %q of table %q: cannot read its definition %q", ref.con.Name, ref.table.Name, ref.con.Definition)
		}
		ref.tmp = ShortName("_online_" + ref.con.Name)
		c.names[ref.tmp] = true
		targets := make([]string, len(ref.con.RefColumns))
		for i, rc := range ref.con.RefColumns {
			targets[i] = rc
			if n, ok := rename[rc]; ok {
				targets[i] = n
			}
		}
		from := c.Qualified(ref.table.Physical)
		def := fmt.Sprintf("FOREIGN KEY (%s) REFERENCES %s (%s)%s", pg.Idents(ref.con.Columns), table, pg.Idents(targets), tail)
		c.Finish(Step{
			Do: fmt.Sprintf("add foreign key %s of %s again, on the new columns of %s (NOT VALID)", ref.con.Name, ref.table.Name, t.Name),
			// PostgreSQL would lock the referencing table first, then the
			// referenced one; applications write parents before children,
			// and a transaction holding the parent while it waits for the
			// child would time the step out again and again.
			SQL: []string{
				fmt.Sprintf("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", table),
				fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s NOT VALID", from, pg.Ident(ref.tmp), def),
			},
			Undo: []string{fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", from, pg.Ident(ref.tmp))},
			Lock: "SHARE ROW EXCLUSIVE on both tables (instant)",
		})
		if ref.con.Validated {
			c.Finish(Step{
				Do:   fmt.Sprintf("validate foreign key %s", ref.tmp),
				SQL:  []string{fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", from, pg.Ident(ref.tmp))},
				Lock: "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
			})
		}
		fromNow := c.Qualified(c.TableNow(ref.table))
		if !locked[ref.table.Physical] {
			locked[ref.table.Physical] = true
			locks = append(locks, fmt.Sprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", fromNow))
		}
		// The old foreign keys go first: they depend on the old key's
		// index, which goes with the old column.
		kw.pre = append([]string{fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", fromNow, pg.Ident(ref.con.Name))}, kw.pre...)
		kw.post = append(kw.post, fmt.Sprintf("ALTER TABLE %s RENAME CONSTRAINT %s TO %s", fromNow, pg.Ident(ref.tmp), pg.Ident(ref.con.Name)))
	}
	kw.pre = append(locks, kw.pre...)
	return kw, nil
}

// fkTail returns what follows the referenced column list in a foreign key
// definition as pg_get_constraintdef prints it (MATCH, ON UPDATE, ON
// DELETE, DEFERRABLE), without a trailing NOT VALID. Quoted identifiers
// may hold anything, so the scan skips them.
func fkTail(def string) (string, bool) {
	const kw = " REFERENCES "
	quoted, depth, seen := false, 0, false
	for i := 0; i < len(def); i++ {
		ch := def[i]
		if ch == '"' {
			quoted = !quoted
			continue
		}
		if quoted {
			continue
		}
		if !seen {
			seen = strings.HasPrefix(def[i:], kw)
			continue
		}
		switch ch {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return strings.TrimSuffix(def[i+1:], " NOT VALID"), true
			}
		}
	}
	return "", false
}

var typmod = regexp.MustCompile(`\s*\([^)]*\)`)

// baseType reduces a type name to a canonical name without modifiers, for
// comparisons: "int8" and "BIGINT" are "bigint", "varchar(20)" is
// "varchar".
func baseType(t string) string {
	t = strings.ToLower(strings.TrimSpace(typmod.ReplaceAllString(t, "")))
	t = strings.Join(strings.Fields(t), " ")
	if i := strings.LastIndexByte(t, '.'); i >= 0 && !strings.Contains(t, `"`) {
		t = t[i+1:]
	}
	switch t {
	case "int", "int4", "integer", "serial", "serial4":
		return "integer"
	case "int8", "bigint", "bigserial", "serial8":
		return "bigint"
	case "int2", "smallint", "smallserial", "serial2":
		return "smallint"
	case "varchar", "character varying":
		return "varchar"
	case "decimal":
		return "numeric"
	case "char", "character", "bpchar":
		return "bpchar"
	case "timestamptz", "timestamp with time zone":
		return "timestamptz"
	case "timestamp", "timestamp without time zone":
		return "timestamp"
	case "float8", "double precision":
		return "float8"
	case "float4", "real":
		return "float4"
	case "bool", "boolean":
		return "boolean"
	}
	return t
}

// integerWidth is the size in bytes of an integer type, 0 for any other.
func integerWidth(t string) int {
	switch baseType(t) {
	case "smallint":
		return 2
	case "integer":
		return 4
	case "bigint":
		return 8
	}
	return 0
}

// comparableKeyTypes reports whether a foreign key column of type fk may
// reference a key of type key. PostgreSQL needs an equality operator of
// the key's index operator family that takes the foreign key's type; online
// accepts the cases it knows hold (the same type, integers of any width,
// text and varchar) and refuses the rest up front rather than at finish.
func comparableKeyTypes(fk, key string) bool {
	a, b := baseType(fk), baseType(key)
	if a == b {
		return true
	}
	if integerWidth(a) > 0 && integerWidth(b) > 0 {
		return true
	}
	text := map[string]bool{"text": true, "varchar": true}
	return text[a] && text[b]
}

// sequenceHandoff returns the statements that give the sequence of the old
// column to the new one, run just before the old column is dropped (which
// would drop an owned sequence with it), keeping its current value.
//
// A serial column's sequence is owned by the column: ALTER SEQUENCE OWNED
// BY moves it, and widens its type to the column's integer type (an int
// serial made bigint would otherwise still stop at 2^31-1). PostgreSQL
// cannot move an identity, so the new column gets an identity of its own
// with the old sequence's name, options and position. The sequence is
// found at run time (pg_get_serial_sequence) because the model does not
// hold sequences; a default that uses a sequence no column owns is left
// alone and set on the new column as it is.
func (c *Compiler) sequenceHandoff(t *schema.Table, r *rewrite) []string {
	if r.added || (r.identity == "" && (r.oldDefault == nil || !strings.HasPrefix(*r.oldDefault, "nextval("))) {
		return nil
	}
	table := c.Qualified(c.TableNow(t))
	oldCol := c.ColumnNow(t, r.oldPhys)
	newCol := c.ColumnNow(t, r.newPhys)
	width := integerWidth(r.newType)
	var b strings.Builder
	fmt.Fprintf(&b, "\nDECLARE\n    seq regclass := pg_catalog.pg_get_serial_sequence(%s, %s)::regclass;\n", pg.Literal(table), pg.Literal(oldCol))
	if r.identity == "" {
		b.WriteString("BEGIN\n    IF seq IS NULL THEN\n        RETURN;\n    END IF;\n")
		fmt.Fprintf(&b, "    EXECUTE pg_catalog.format('ALTER SEQUENCE %%s OWNED BY %%s.%%I', seq, %s, %s);\n", pg.Literal(table), pg.Literal(newCol))
		if width > 0 {
			fmt.Fprintf(&b, "    IF (SELECT ty.typlen FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_type ty ON ty.oid = s.seqtypid WHERE s.seqrelid = seq) < %d THEN\n", width)
			fmt.Fprintf(&b, "        EXECUTE pg_catalog.format('ALTER SEQUENCE %%s AS %%s', seq, %s);\n    END IF;\n", pg.Literal(baseType(r.newType)))
		}
		b.WriteString("END\n")
		return []string{"DO " + pg.DollarQuote(b.String())}
	}
	kind := "BY DEFAULT"
	if r.identity == "a" {
		kind = "ALWAYS"
	}
	b.WriteString(`    s record;
    last bigint;
    lo numeric;
    hi numeric;
BEGIN
    SELECT p.*, c.relname, n.nspname INTO s
    FROM pg_catalog.pg_sequence p
    JOIN pg_catalog.pg_class c ON c.oid = p.seqrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE p.seqrelid = seq;
    -- Bounds that were the old type's own are left to the new type.
    lo := CASE s.seqtypid WHEN 'int2'::regtype THEN -32768 WHEN 'int4'::regtype THEN -2147483648 ELSE -9223372036854775808 END;
    hi := CASE s.seqtypid WHEN 'int2'::regtype THEN 32767 WHEN 'int4'::regtype THEN 2147483647 ELSE 9223372036854775807 END;
    last := pg_catalog.pg_sequence_last_value(seq);
`)
	fmt.Fprintf(&b, "    EXECUTE pg_catalog.format('ALTER TABLE %%s ALTER COLUMN %%I DROP IDENTITY', %s, %s);\n", pg.Literal(table), pg.Literal(oldCol))
	fmt.Fprintf(&b, "    EXECUTE pg_catalog.format('ALTER TABLE %%s ALTER COLUMN %%I ADD GENERATED %s AS IDENTITY (SEQUENCE NAME %%I.%%I START WITH %%s INCREMENT BY %%s %%s %%s CACHE %%s %%s)',\n", kind)
	// The sequence takes the column's type: identity options have no AS.
	fmt.Fprintf(&b, "        %s, %s, s.nspname, s.relname, s.seqstart, s.seqincrement,\n", pg.Literal(table), pg.Literal(newCol))
	b.WriteString(`        CASE WHEN s.seqmin = lo THEN 'NO MINVALUE' ELSE 'MINVALUE ' || s.seqmin END,
        CASE WHEN s.seqmax = hi THEN 'NO MAXVALUE' ELSE 'MAXVALUE ' || s.seqmax END,
        s.seqcache, CASE WHEN s.seqcycle THEN 'CYCLE' ELSE 'NO CYCLE' END);
    IF last IS NOT NULL THEN
        PERFORM pg_catalog.setval(pg_catalog.format('%I.%I', s.nspname, s.relname)::regclass, last, true);
    END IF;
END
`)
	// ADD ... AS IDENTITY needs the column NOT NULL; the validated check
	// makes that instant. The swap sets it again, which is then a no-op.
	return []string{
		fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", table, pg.Ident(newCol)),
		"DO " + pg.DollarQuote(b.String()),
	}
}

// viewSequenceDefault leaves the new version's view without a default for
// a rewritten column whose default draws from a sequence. An insert through
// the new version that leaves the column out then reaches the table with
// the new column NULL; the table's default fills the old column, and the
// up trigger copies it over, as for an old-version insert. With the default
// on the view as well, every such insert would draw two numbers, one of
// them thrown away.
func (c *Compiler) viewSequenceDefault(t *schema.Table, r *rewrite) {
	if r.added || r.oldDefault == nil || r.col.Default == nil || *r.col.Default != *r.oldDefault || !strings.HasPrefix(*r.oldDefault, "nextval(") {
		return
	}
	if _, set := c.viewDefaults[t.Physical][r.newPhys]; set {
		return
	}
	if c.viewDefaults == nil {
		c.viewDefaults = map[string]map[string]*string{}
	}
	if c.viewDefaults[t.Physical] == nil {
		c.viewDefaults[t.Physical] = map[string]*string{}
	}
	c.viewDefaults[t.Physical][r.newPhys] = nil
}

// relaxIdentity makes a GENERATED ALWAYS identity column GENERATED BY
// DEFAULT while it is rewritten: the reverse conversion must write the old
// column from the new version's value, and PostgreSQL refuses any UPDATE
// that names an ALWAYS identity column, the trigger's check included. For
// the migration's duration the old version may then give a key explicitly;
// complete gives the new column an ALWAYS identity, rollback restores it.
func (c *Compiler) relaxIdentity(t *schema.Table, col *schema.Column) {
	if col.Identity != "a" {
		return
	}
	table := c.Qualified(t.Physical)
	c.Expand(Step{
		Do:   fmt.Sprintf("let the sync triggers write identity column %s.%s (GENERATED BY DEFAULT until complete)", t.Name, col.Name),
		SQL:  []string{fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET GENERATED BY DEFAULT", table, pg.Ident(col.Physical))},
		Undo: []string{fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET GENERATED ALWAYS", table, pg.Ident(col.Physical))},
		Lock: "ACCESS EXCLUSIVE (catalog only, instant)",
	})
}
