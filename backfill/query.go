package backfill

import (
	"fmt"
	"strings"

	"github.com/onlinepg/online/internal/pg"
)

// walkAlias names the table in the bound queries. Their ORDER BY must name
// the table's columns qualified: a bare name there would resolve to the
// select list's "k"::text output column of the same name and sort the text
// form (wrong order for numbers, and a sort instead of an index walk).
const walkAlias = "_backfill"

// queries holds the SQL of one task, built once per Run. Variants without a
// lower bound serve the first batch of a walk that starts from the beginning.
type queries struct {
	settings string // applies the transaction-local settings
	maxKey   string // largest key now: where the walk ends
	maxUntil string // largest key now not above $1..: where a range ends
	bound    [2]string
	count    [2]string
	update   [2]string
	// lock, for an insert task, locks the batch's rows before the insert:
	// a writer of one of them then either committed before the insert's
	// own statement (which sees what its triggers wrote) or waits for
	// the batch to commit (and its triggers see the batch's rows), so the
	// two never both add the row of one source row.
	lock [2]string
}

// The index of the variant: 0 without a lower bound, 1 with one.
func variant(lo []string) int {
	if lo == nil {
		return 0
	}
	return 1
}

func buildQueries(t Task) queries {
	table := pg.Ident(t.Schema, t.Table)
	n := len(t.Key)
	var q queries
	q.settings = `SELECT set_config(s.name, s.value, true) FROM unnest($1::text[], $2::text[]) AS s(name, value)`
	q.maxKey = "SELECT " + keyText(t.Key, walkAlias) + " FROM " + table + " AS " + pg.Ident(walkAlias) +
		" ORDER BY " + keyOrder(t.Key, walkAlias, " DESC") + " LIMIT 1"
	q.maxUntil = "SELECT " + keyText(t.Key, walkAlias) + " FROM " + table + " AS " + pg.Ident(walkAlias) +
		" WHERE " + keyCompare(t.Key, walkAlias, "<=", 1) +
		" ORDER BY " + keyOrder(t.Key, walkAlias, " DESC") + " LIMIT 1"
	for v := 0; v < 2; v++ {
		// Placeholders: the lower bound (variant 1 only), then the upper
		// bound, then (bound query only) the offset.
		lower, next := "", 1
		if v == 1 {
			lower = keyCompare(t.Key, walkAlias, ">", 1) + " AND "
			next = n + 1
		}
		from := " FROM " + table + " AS " + pg.Ident(walkAlias) + " WHERE " + lower + keyCompare(t.Key, walkAlias, "<=", next)
		// OFFSET n-1 LIMIT 1 reads the n-th key along the index without
		// sending the n-1 before it.
		q.bound[v] = "SELECT " + keyText(t.Key, walkAlias) + from +
			" ORDER BY " + keyOrder(t.Key, walkAlias, "") + fmt.Sprintf(" OFFSET $%d LIMIT 1", next+n)
		q.count[v] = "SELECT count(*)" + from

		var set []string
		for _, a := range t.Set {
			set = append(set, pg.Ident(a.Column)+" = ("+a.Expr+")")
		}
		lowerU := ""
		if v == 1 {
			lowerU = keyCompare(t.Key, "", ">", 1) + " AND "
		}
		where := " WHERE " + lowerU + keyCompare(t.Key, "", "<=", next)
		if strings.TrimSpace(t.Where) != "" {
			where += " AND (" + t.Where + ")"
		}
		q.update[v] = "UPDATE " + table + " SET " + strings.Join(set, ", ") + where
		if in := t.Insert; in != nil {
			exprs := make([]string, len(in.Exprs))
			for i, e := range in.Exprs {
				exprs[i] = pg.Paren(e)
			}
			q.lock[v] = "SELECT 1 FROM " + table + " WHERE " + lowerU + keyCompare(t.Key, "", "<=", next) + " FOR SHARE"
			q.update[v] = "INSERT INTO " + pg.Ident(t.Schema, in.Into) + " (" + pg.Idents(in.Columns) + ") SELECT " + strings.Join(exprs, ", ") + " FROM " + table + where
		}
	}
	return q
}

// keyText is the select list of a key in text form.
func keyText(key []Column, alias string) string {
	parts := make([]string, len(key))
	for i, c := range key {
		parts[i] = pg.Ident(alias, c.Name) + "::text"
	}
	return strings.Join(parts, ", ")
}

// keyOrder is the ORDER BY list of a key, each column followed by dir.
func keyOrder(key []Column, alias, dir string) string {
	parts := make([]string, len(key))
	for i, c := range key {
		parts[i] = pg.Ident(alias, c.Name) + dir
	}
	return strings.Join(parts, ", ")
}

// keyCompare compares the key with the parameters $first.. as a row value:
// (k1, k2) > ($1, $2) is the lexicographic order a btree index on (k1, k2)
// walks, and the planner turns it into an index bound. The values arrive as
// text and are cast back to the column types; the cast result has the type's
// default collation, which yields to the column's own, so text keys compare
// under the same collation as their index.
func keyCompare(key []Column, alias, op string, first int) string {
	cols := make([]string, len(key))
	vals := make([]string, len(key))
	for i, c := range key {
		cols[i] = pg.Ident(alias, c.Name)
		vals[i] = fmt.Sprintf("CAST($%d::text AS %s)", first+i, c.Type)
	}
	if len(key) == 1 {
		return cols[0] + " " + op + " " + vals[0]
	}
	return "(" + strings.Join(cols, ", ") + ") " + op + " (" + strings.Join(vals, ", ") + ")"
}

// keyArgs lays out key bounds as query arguments.
func keyArgs(bounds ...[]string) []any {
	var args []any
	for _, b := range bounds {
		for _, v := range b {
			args = append(args, v)
		}
	}
	return args
}
