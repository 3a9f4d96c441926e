package lint

import (
	"regexp"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/onlinepg/online/internal/sqlsrc"
)

// volatileFuncs are functions PostgreSQL marks VOLATILE that people use as
// column defaults. A default calling one is computed per row, so adding the
// column rewrites the table. now(), current_timestamp and friends are
// STABLE: evaluated once, stored in the catalog, no rewrite.
var volatileFuncs = map[string]bool{
	"random": true, "gen_random_uuid": true, "uuid_generate_v1": true, "uuid_generate_v1mc": true,
	"uuid_generate_v4": true, "uuidv4": true, "uuidv7": true, "clock_timestamp": true, "timeofday": true,
	"nextval": true, "txid_current": true, "random_normal": true, "gen_random_bytes": true,
}

func isSerial(t string) bool {
	switch t {
	case "serial", "serial4", "bigserial", "serial8", "smallserial", "serial2":
		return true
	}
	return false
}

func (c *checker) alterTable(st sqlsrc.Statement, s *pg_query.AlterTableStmt) {
	if s.Objtype != pg_query.ObjectType_OBJECT_TABLE || s.Relation == nil {
		return
	}
	table := s.Relation.Relname
	if c.created[table] {
		// A table this file created is empty and unknown to running code.
		for _, n := range s.Cmds {
			if cmd := n.GetAlterTableCmd(); cmd.Subtype == pg_query.AlterTableType_AT_AddColumn {
				cd := cmd.Def.GetColumnDef()
				c.types[table+"."+cd.Colname] = typeText(cd.TypeName)
			}
		}
		return
	}
	exclusive := false
	for _, n := range s.Cmds {
		cmd := n.GetAlterTableCmd()
		switch cmd.Subtype {
		case pg_query.AlterTableType_AT_AddColumn:
			exclusive = true
			c.addColumn(st, table, cmd.Def.GetColumnDef())
		case pg_query.AlterTableType_AT_DropColumn:
			exclusive = true
			c.flag(st, "dropping-column", "drops %s.%s", table, cmd.Name)
		case pg_query.AlterTableType_AT_AlterColumnType:
			exclusive = true
			cd := cmd.Def.GetColumnDef()
			key := table + "." + cmd.Name
			newType := typeText(cd.TypeName)
			if cd.RawDefault != nil || !relabelOnly(c.types[key], newType) {
				c.flag(st, "changing-column-type", "changes the type of %s to %s%s", key, newType, typeHint(c.types[key], newType, cd.RawDefault != nil))
			}
			c.types[key] = newType
		case pg_query.AlterTableType_AT_SetNotNull:
			exclusive = true
			if !c.notNull[table+"."+cmd.Name] {
				c.flag(st, "set-not-null", "sets %s.%s NOT NULL with no validated CHECK (%s IS NOT NULL) before it", table, cmd.Name, cmd.Name)
			}
		case pg_query.AlterTableType_AT_AddConstraint:
			con := cmd.Def.GetConstraint()
			c.addConstraint(st, table, con)
			if con.Contype != pg_query.ConstrType_CONSTR_FOREIGN {
				exclusive = true
			}
		case pg_query.AlterTableType_AT_ValidateConstraint:
			if col, ok := c.pending[cmd.Name]; ok {
				c.notNull[col] = true
			}
		case pg_query.AlterTableType_AT_SetTableSpace, pg_query.AlterTableType_AT_SetLogged, pg_query.AlterTableType_AT_SetUnLogged:
			exclusive = true
			c.flag(st, "table-rewrite", "%s rewrites %s", strings.TrimPrefix(cmd.Subtype.String(), "AT_"), table)
		case pg_query.AlterTableType_AT_ColumnDefault, pg_query.AlterTableType_AT_DropNotNull,
			pg_query.AlterTableType_AT_DropConstraint, pg_query.AlterTableType_AT_ReplicaIdentity:
			exclusive = true
		}
	}
	if exclusive {
		c.exclusive(st)
	}
}

func typeHint(old, new string, using bool) string {
	base := strings.TrimSpace(strings.SplitN(new, "(", 2)[0])
	widenable := base == "text" || base == "varchar" || base == "character varying" || base == "numeric" || base == "inet"
	switch {
	case using:
		return " with USING (a rewrite)"
	case old == "" && !widenable:
		return ""
	case old == "":
		return " (the old type is not in this file: if this only widens varchar(n) or numeric(p,s), or turns varchar into text, there is no rewrite; ignore this finding with that reason)"
	}
	return " from " + old
}

var typmod = regexp.MustCompile(`^([a-z ]+?)(?:\((\d+)(?:,\s*(\d+))?\))?$`)

// relabelOnly reports whether ALTER TYPE from old to new is known to keep
// the stored data as is (PostgreSQL then checks and relabels, no rewrite).
func relabelOnly(old, new string) bool {
	if old == "" {
		return false
	}
	om, nm := typmod.FindStringSubmatch(old), typmod.FindStringSubmatch(new)
	if om == nil || nm == nil {
		return false
	}
	varchar := func(s string) bool { return s == "varchar" || s == "character varying" }
	num := func(s string) (int, bool) { n, err := strconv.Atoi(s); return n, err == nil }
	switch {
	case varchar(om[1]) && (nm[1] == "text" || (varchar(nm[1]) && nm[2] == "")):
		return true
	case varchar(om[1]) && varchar(nm[1]):
		o, ok1 := num(om[2])
		n, ok2 := num(nm[2])
		return ok1 && ok2 && n >= o
	case om[1] == "text" && varchar(nm[1]) && nm[2] == "":
		return true
	case om[1] == "numeric" && nm[1] == "numeric":
		if nm[2] == "" {
			return true
		}
		op, ok1 := num(om[2])
		np, ok2 := num(nm[2])
		return ok1 && ok2 && np >= op && om[3] == nm[3]
	case om[1] == "cidr" && nm[1] == "inet":
		return true
	}
	return false
}

func (c *checker) addColumn(st sqlsrc.Statement, table string, cd *pg_query.ColumnDef) {
	typ := typeText(cd.TypeName)
	c.types[table+"."+cd.Colname] = typ
	notNull, hasDefault := false, false
	if isSerial(sqlsrc.TypeBase(cd.TypeName)) {
		hasDefault = true
		c.flag(st, "volatile-default", "adds %s.%s as %s: its nextval() default is computed for every row", table, cd.Colname, typ)
	}
	for _, n := range cd.Constraints {
		con := n.GetConstraint()
		switch con.Contype {
		case pg_query.ConstrType_CONSTR_NOTNULL:
			notNull = true
		case pg_query.ConstrType_CONSTR_DEFAULT:
			hasDefault = true
			if fn := volatileCall(con.RawExpr); fn != "" {
				c.flag(st, "volatile-default", "adds %s.%s with a default that calls %s(), which is volatile", table, cd.Colname, fn)
			}
		case pg_query.ConstrType_CONSTR_IDENTITY:
			hasDefault = true
			c.flag(st, "volatile-default", "adds %s.%s as an identity column: every row gets a value from the sequence", table, cd.Colname)
		case pg_query.ConstrType_CONSTR_GENERATED:
			hasDefault = true
			c.flag(st, "adding-stored-generated-column", "adds stored generated column %s.%s", table, cd.Colname)
		case pg_query.ConstrType_CONSTR_PRIMARY:
			notNull = true
			c.flag(st, "unique-under-exclusive-lock", "adds %s.%s as a PRIMARY KEY, building its index under ACCESS EXCLUSIVE", table, cd.Colname)
		case pg_query.ConstrType_CONSTR_UNIQUE:
			c.flag(st, "unique-under-exclusive-lock", "adds %s.%s UNIQUE, building its index under ACCESS EXCLUSIVE", table, cd.Colname)
		case pg_query.ConstrType_CONSTR_CHECK:
			c.flag(st, "constraint-missing-not-valid", "adds %s.%s with a CHECK that is checked on every row under ACCESS EXCLUSIVE", table, cd.Colname)
		case pg_query.ConstrType_CONSTR_FOREIGN:
			c.flag(st, "constraint-missing-not-valid", "adds %s.%s with REFERENCES %s: the foreign key is validated at once, locking both tables against writes", table, cd.Colname, con.Pktable.GetRelname())
		}
	}
	if notNull && !hasDefault {
		c.flag(st, "not-null-without-default", "adds %s.%s NOT NULL without a default", table, cd.Colname)
	}
}

// volatileCall returns the first volatile function an expression calls.
func volatileCall(n *pg_query.Node) string {
	fns, _ := sqlsrc.FuncNames(n)
	for _, f := range fns {
		if volatileFuncs[f] {
			return f
		}
	}
	return ""
}

func (c *checker) addConstraint(st sqlsrc.Statement, table string, con *pg_query.Constraint) {
	switch con.Contype {
	case pg_query.ConstrType_CONSTR_CHECK:
		if col := isNotNullCheck(con.RawExpr); col != "" {
			if con.SkipValidation {
				c.pending[con.Conname] = table + "." + col
			} else {
				c.notNull[table+"."+col] = true
			}
		}
		if !con.SkipValidation {
			c.flag(st, "constraint-missing-not-valid", "adds CHECK %s to %s and checks every row under ACCESS EXCLUSIVE", con.Conname, table)
		}
	case pg_query.ConstrType_CONSTR_FOREIGN:
		if !con.SkipValidation {
			c.flag(st, "constraint-missing-not-valid", "adds FOREIGN KEY %s to %s and validates every row while %s and %s take no writes", con.Conname, table, table, con.Pktable.GetRelname())
		}
	case pg_query.ConstrType_CONSTR_UNIQUE, pg_query.ConstrType_CONSTR_PRIMARY, pg_query.ConstrType_CONSTR_EXCLUSION:
		if con.Indexname == "" {
			kind := map[pg_query.ConstrType]string{pg_query.ConstrType_CONSTR_UNIQUE: "UNIQUE", pg_query.ConstrType_CONSTR_PRIMARY: "PRIMARY KEY", pg_query.ConstrType_CONSTR_EXCLUSION: "EXCLUDE"}[con.Contype]
			if con.Conname != "" {
				kind += " " + con.Conname
			}
			c.flag(st, "unique-under-exclusive-lock", "adds %s to %s, building its index under ACCESS EXCLUSIVE", kind, table)
		}
	}
}

// isNotNullCheck returns the column of a "col IS NOT NULL" expression.
func isNotNullCheck(n *pg_query.Node) string {
	nt := n.GetNullTest()
	if nt == nil || nt.Nulltesttype != pg_query.NullTestType_IS_NOT_NULL {
		return ""
	}
	if cr := nt.Arg.GetColumnRef(); cr != nil {
		return sqlsrc.Last(cr.Fields)
	}
	return ""
}
