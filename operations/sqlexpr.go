package operations

import (
	"strings"

	"github.com/onlinepg/online/internal/pg"
)

// token is a piece of a SQL expression as far as names are concerned.
type token struct {
	text  string
	ident string // the identifier it denotes ("" when not an identifier)
	isID  bool
}

// lex splits a SQL expression into identifiers and everything else, keeping
// string literals, dollar-quoted strings and comments intact. It is not a SQL
// parser: it knows just enough to find the column names an expression uses.
func lex(expr string) []token {
	var out []token
	r := []rune(expr)
	i := 0
	emit := func(from, to int, ident string, isID bool) {
		out = append(out, token{text: string(r[from:to]), ident: ident, isID: isID})
	}
	for i < len(r) {
		ch := r[i]
		switch {
		case ch == '\'' || (ch == 'E' || ch == 'e') && i+1 < len(r) && r[i+1] == '\'':
			start := i
			if ch != '\'' {
				i++
			}
			i++
			for i < len(r) {
				if r[i] == '\\' && ch != '\'' {
					i += 2
					continue
				}
				if r[i] == '\'' {
					if i+1 < len(r) && r[i+1] == '\'' {
						i += 2
						continue
					}
					i++
					break
				}
				i++
			}
			emit(start, min(i, len(r)), "", false)
		case ch == '"':
			start := i
			i++
			var b strings.Builder
			for i < len(r) {
				if r[i] == '"' {
					if i+1 < len(r) && r[i+1] == '"' {
						b.WriteRune('"')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteRune(r[i])
				i++
			}
			emit(start, i, b.String(), true)
		case ch == '-' && i+1 < len(r) && r[i+1] == '-':
			start := i
			for i < len(r) && r[i] != '\n' {
				i++
			}
			emit(start, i, "", false)
		case ch == '/' && i+1 < len(r) && r[i+1] == '*':
			start := i
			i += 2
			for i+1 < len(r) && !(r[i] == '*' && r[i+1] == '/') {
				i++
			}
			i = min(i+2, len(r))
			emit(start, i, "", false)
		case ch == '$':
			// $tag$...$tag$ or a parameter such as $1.
			start := i
			j := i + 1
			for j < len(r) && (isIdentRune(r[j]) && !(r[j] >= '0' && r[j] <= '9' && j == i+1)) {
				j++
			}
			if j < len(r) && r[j] == '$' {
				tag := string(r[i : j+1])
				end := strings.Index(string(r[j+1:]), tag)
				if end >= 0 {
					i = j + 1 + len([]rune(string(r[j+1:])[:end])) + len([]rune(tag))
				} else {
					i = len(r)
				}
				emit(start, i, "", false)
				continue
			}
			i++
			for i < len(r) && r[i] >= '0' && r[i] <= '9' {
				i++
			}
			emit(start, i, "", false)
		case isIdentStart(ch):
			start := i
			for i < len(r) && isIdentRune(r[i]) {
				i++
			}
			emit(start, i, strings.ToLower(string(r[start:i])), true)
		default:
			start := i
			i++
			emit(start, i, "", false)
		}
	}
	return out
}

func isIdentStart(ch rune) bool {
	return ch == '_' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch > 127
}

func isIdentRune(ch rune) bool { return isIdentStart(ch) || ch >= '0' && ch <= '9' || ch == '$' }

// columnRefs reports, for each token, whether it is an identifier in a
// position where it can name a column: not a function name (followed by
// "("), not after "." (a qualified name's later part) or "::" (a type).
func columnRefs(toks []token) []bool {
	refs := make([]bool, len(toks))
	prev := func(i int) string {
		for j := i - 1; j >= 0; j-- {
			if t := strings.TrimSpace(toks[j].text); t != "" {
				return t
			}
		}
		return ""
	}
	next := func(i int) string {
		for j := i + 1; j < len(toks); j++ {
			if t := strings.TrimSpace(toks[j].text); t != "" {
				return t
			}
		}
		return ""
	}
	for i, t := range toks {
		if !t.isID {
			continue
		}
		p := prev(i)
		if next(i) == "(" || p == "." || (p == ":" && i >= 2 && strings.TrimSpace(toks[i-2].text) == ":") {
			continue
		}
		refs[i] = true
	}
	return refs
}

// ReferencedColumns returns which of names the expression mentions as a
// column. It may over-report (a name that is also a keyword), never under-report
// a plain or quoted reference.
func ReferencedColumns(expr string, names []string) []string {
	toks := lex(expr)
	refs := columnRefs(toks)
	used := map[string]bool{}
	for i, t := range toks {
		if refs[i] {
			used[t.ident] = true
		}
	}
	var out []string
	for _, n := range names {
		if used[n] {
			out = append(out, n)
		}
	}
	return out
}

// RenameIdentifiers rewrites column references of expr by m (visible name
// to physical name), quoting the replacements.
func RenameIdentifiers(expr string, m map[string]string) string {
	toks := lex(expr)
	refs := columnRefs(toks)
	var b strings.Builder
	for i, t := range toks {
		if refs[i] {
			if to, ok := m[t.ident]; ok {
				b.WriteString(pg.Ident(to))
				continue
			}
		}
		b.WriteString(t.text)
	}
	return b.String()
}
