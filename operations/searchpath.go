package operations

import (
	"strings"

	"github.com/onlinepg/online/internal/sqllex"
	"github.com/onlinepg/online/triggers"
)

// pathKeywords are words after which an expression may name a relation: a
// relation resolves through the caller's search_path, and in a version
// schema the same name is a view.
var pathKeywords = map[string]bool{"select": true, "from": true, "table": true, "values": true, "with": true, "join": true}

// callerPathSafe reports whether the conversions of rw may run under the
// writing session's search_path rather than a pinned one (see
// triggers.Table.CallerPath). That holds when nothing they name can resolve
// outside pg_catalog: pg_catalog is searched before anything a search_path
// lists, so lower(email) or x::bigint mean the same in every session. It
// errs on the side of pinning: any identifier, operator or string literal
// that matches a name outside pg_catalog (schema.Schema.PathNames), a
// relation or a type of the migrated schema, or a word that opens a
// subquery, pins the path. An object of such a name created after start can
// still change what an expression means in a session whose search_path
// puts a schema before pg_catalog explicitly; nobody does that by accident.
func (c *Compiler) callerPathSafe(rw triggers.Rewrite) bool {
	if c.Schema.PathNames == nil {
		return false // not read (a schema built by hand): assume the worst
	}
	var texts []string
	for _, conv := range []*triggers.Conversion{rw.Up, rw.Down} {
		if conv == nil {
			continue
		}
		for _, in := range conv.Inputs {
			texts = append(texts, in.Type)
		}
		for _, s := range conv.Steps {
			texts = append(texts, s.Expr, s.Type)
		}
	}
	for _, text := range texts {
		if !c.pathFreeText(text) {
			return false
		}
	}
	return true
}

func (c *Compiler) pathFreeText(text string) bool {
	toks := sqllex.Lex(text)
	op := ""
	for i, t := range toks {
		if t.Kind == sqllex.Other && strings.ContainsAny(t.Text, "+-*/<>=~!@#%^&|`?") {
			op += t.Text
			if i+1 < len(toks) && toks[i+1].Kind == sqllex.Other {
				continue
			}
		}
		if op != "" {
			if c.Schema.PathNames[op] {
				return false
			}
			op = ""
		}
		switch {
		case t.IsID:
			if !t.Quoted && pathKeywords[t.Name] {
				return false
			}
			if c.nameOutsideCatalog(t.Name) {
				return false
			}
		case t.Kind == sqllex.String:
			// A literal may stand for a name: 'users'::regclass,
			// nextval('seq'), to_tsvector('english', ...).
			body := strings.ToLower(stringBody(t.Text))
			if c.nameOutsideCatalog(body) {
				return false
			}
			if dot := strings.LastIndexByte(body, '.'); dot >= 0 && c.nameOutsideCatalog(strings.Trim(body[dot+1:], `"`)) {
				return false
			}
		}
	}
	return true
}

func (c *Compiler) nameOutsideCatalog(name string) bool {
	for _, s := range []map[string]bool{c.Schema.PathNames, c.Schema.Relations, c.Old.Relations} {
		if s[name] {
			return true
		}
	}
	_, newType := c.Schema.Types[name]
	_, oldType := c.Old.Types[name]
	_, newEnum := c.Schema.Enums[name]
	return newType || oldType || newEnum
}

// stringBody strips the quotes, prefix or dollar tags of a string literal
// token; escapes are left as they are (the result is only compared with
// names, and a name with an escape in it is compared conservatively).
func stringBody(lit string) string {
	if strings.HasPrefix(lit, "$") {
		if end := strings.IndexByte(lit[1:], '$'); end >= 0 {
			tag := lit[:end+2]
			return strings.TrimSuffix(strings.TrimPrefix(lit, tag), tag)
		}
	}
	first, last := strings.IndexByte(lit, '\''), strings.LastIndexByte(lit, '\'')
	if first >= 0 && last > first {
		return strings.ReplaceAll(lit[first+1:last], "''", "'")
	}
	return lit
}
