package sqllex

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/onlinepg/online/internal/pg"
)

// Kind classifies a Token of a SQL expression.
type Kind int

const (
	Other   Kind = iota // an operator or punctuation
	Ident               // an identifier, quoted or not
	String              // a string literal of any form
	Number              // a numeric literal
	Param               // $1
	Space               // white space
	Comment             // -- or /* */
)

// Token is a piece of a SQL expression as far as names are concerned.
type Token struct {
	Text   string
	Name   string // the identifier it denotes ("" when not an identifier)
	IsID   bool
	Quoted bool // a "quoted" or U&"quoted" identifier: never a keyword
	Kind   Kind
}

// significant reports whether a Token takes part in the syntax.
func (t Token) significant() bool { return t.Kind != Space && t.Kind != Comment }

// keyword reports whether t is the unquoted keyword kw (lower case).
func (t Token) keyword(kw string) bool { return t.IsID && !t.Quoted && t.Name == kw }

// Lex splits a SQL expression into identifiers and everything else, keeping
// string literals, dollar-quoted strings and comments intact. It is not a SQL
// parser: it knows just enough to find the column names an expression uses.
// Concatenating the tokens' text gives back expr, byte for byte. Like
// PostgreSQL's scanner it works on bytes: every byte of a multi-byte
// character is an identifier byte.
func Lex(expr string) []Token {
	var out []Token
	s := expr
	n := len(s)
	i := 0
	emit := func(from, to int, kind Kind) *Token {
		out = append(out, Token{Text: s[from:to], Kind: kind})
		return &out[len(out)-1]
	}
	at := func(j int, prefix string) bool { // s[j:] starts with prefix, ASCII case-insensitively
		return j >= 0 && j+len(prefix) <= n && strings.EqualFold(s[j:j+len(prefix)], prefix)
	}
	for i < n {
		ch := s[i]
		switch {
		case isSpace(ch):
			start := i
			for i < n && isSpace(s[i]) {
				i++
			}
			emit(start, i, Space)
		case at(i, "--"):
			start := i
			if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
				i += j
			} else {
				i = n
			}
			emit(start, i, Comment)
		case at(i, "/*"):
			// Block comments nest in PostgreSQL.
			start := i
			depth := 0
			for i < n {
				if at(i, "/*") {
					depth++
					i += 2
				} else if at(i, "*/") {
					i += 2
					if depth--; depth == 0 {
						break
					}
				} else {
					i++
				}
			}
			emit(start, i, Comment)
		case ch == '\'':
			start := i
			i = endOfString(s, i+1, false)
			emit(start, i, String)
		case (ch == 'E' || ch == 'e') && at(i+1, "'"):
			start := i
			i = endOfString(s, i+2, true)
			emit(start, i, String)
		case strings.IndexByte("BbXxNn", ch) >= 0 && at(i+1, "'"):
			// Bit string, hex bit string, national character string.
			start := i
			i = endOfString(s, i+2, false)
			emit(start, i, String)
		case (ch == 'U' || ch == 'u') && at(i+1, "&'"):
			start := i
			i = endOfString(s, i+3, false)
			i, _ = uescape(s, i)
			emit(start, i, String)
		case (ch == 'U' || ch == 'u') && at(i+1, "&\""):
			start := i
			end, raw := endOfQuoted(s, i+2)
			end, esc := uescape(s, end)
			t := emit(start, end, Ident)
			t.IsID, t.Quoted = true, true
			if name, ok := decodeUnicodeEscapes(raw, esc); ok {
				t.Name = name
			} else {
				t.Name = raw
			}
			i = end
		case ch == '"':
			start := i
			end, name := endOfQuoted(s, i)
			t := emit(start, end, Ident)
			t.Name, t.IsID, t.Quoted = name, true, true
			i = end
		case ch == '$':
			start := i
			// $tag$...$tag$: a tag is an identifier without "$" that does
			// not start with a digit; $$ has an empty tag.
			j := i + 1
			if j < n && isIdentStart(s[j]) {
				for j < n && isIdentByte(s[j]) && s[j] != '$' {
					j++
				}
			}
			if j < n && s[j] == '$' {
				tag := s[i : j+1]
				if end := strings.Index(s[j+1:], tag); end >= 0 {
					i = j + 1 + end + len(tag)
				} else {
					i = n
				}
				emit(start, i, String)
				continue
			}
			i++
			for i < n && isDigit(s[i]) {
				i++
			}
			emit(start, i, Param)
		case isDigit(ch) || ch == '.' && i+1 < n && isDigit(s[i+1]):
			start := i
			i = endOfNumber(s, i)
			emit(start, i, Number)
		case isIdentStart(ch):
			start := i
			for i < n && isIdentByte(s[i]) {
				i++
			}
			t := emit(start, i, Ident)
			t.Name, t.IsID = downcase(s[start:i]), true
		case at(i, "::"):
			emit(i, i+2, Other)
			i += 2
		default:
			emit(i, i+1, Other)
			i++
		}
	}
	return out
}

// endOfString returns the index just past a string literal whose body starts
// at i; backslash escapes a character in escape strings (E'...') only.
func endOfString(s string, i int, backslash bool) int {
	for i < len(s) {
		switch {
		case backslash && s[i] == '\\':
			i += 2
		case s[i] == '\'':
			if i+1 < len(s) && s[i+1] == '\'' {
				i += 2
				continue
			}
			return i + 1
		default:
			i++
		}
	}
	return len(s)
}

// endOfQuoted reads a quoted identifier whose opening quote is at i and
// returns the index past it and the name ("" doubled to ").
func endOfQuoted(s string, i int) (int, string) {
	var b strings.Builder
	i++
	for i < len(s) {
		if s[i] == '"' {
			if i+1 < len(s) && s[i+1] == '"' {
				b.WriteByte('"')
				i += 2
				continue
			}
			return i + 1, b.String()
		}
		b.WriteByte(s[i])
		i++
	}
	return len(s), b.String()
}

// uescape reads an optional UESCAPE 'c' clause after a U& literal ending at
// i. It returns where the clause ends (i when there is none) and the escape
// character (backslash when there is none).
func uescape(s string, i int) (int, byte) {
	j := i
	for j < len(s) && isSpace(s[j]) {
		j++
	}
	if j+7 > len(s) || !strings.EqualFold(s[j:j+7], "uescape") || j+7 < len(s) && isIdentByte(s[j+7]) {
		return i, '\\'
	}
	j += 7
	for j < len(s) && isSpace(s[j]) {
		j++
	}
	if j+2 < len(s) && s[j] == '\'' && s[j+2] == '\'' {
		return j + 3, s[j+1]
	}
	return i, '\\'
}

// decodeUnicodeEscapes decodes the body of a U&"..." identifier: escXXXX,
// esc+XXXXXX and esc esc.
func decodeUnicodeEscapes(s string, esc byte) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != esc {
			b.WriteByte(s[i])
			continue
		}
		var hex string
		switch {
		case i+1 < len(s) && s[i+1] == esc:
			b.WriteByte(esc)
			i++
			continue
		case i+7 < len(s) && s[i+1] == '+':
			hex = s[i+2 : i+8]
			i += 7
		case i+4 < len(s):
			hex = s[i+1 : i+5]
			i += 4
		default:
			return "", false
		}
		v, err := strconv.ParseUint(hex, 16, 32)
		if err != nil || !utf8.ValidRune(rune(v)) {
			return "", false
		}
		b.WriteRune(rune(v))
	}
	return b.String(), true
}

// endOfNumber returns the index past a numeric literal starting at i:
// 42, 4.2, .42, 4e2, 4.2E-1, 0x2A, 1_000.
func endOfNumber(s string, i int) int {
	n := len(s)
	if s[i] == '0' && i+1 < n && strings.IndexByte("xXoObB", s[i+1]) >= 0 {
		i += 2
		for i < n && isIdentByte(s[i]) && s[i] != '$' {
			i++
		}
		return i
	}
	digits := func() {
		for i < n && (isDigit(s[i]) || s[i] == '_') {
			i++
		}
	}
	digits()
	if i < n && s[i] == '.' && !(i+1 < n && s[i+1] == '.') {
		i++
		digits()
	}
	if i < n && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < n && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < n && isDigit(s[j]) {
			i = j
			digits()
		}
	}
	return i
}

func isSpace(ch byte) bool {
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v'
}

func isDigit(ch byte) bool { return ch >= '0' && ch <= '9' }

func isIdentStart(ch byte) bool {
	return ch == '_' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= 0x80
}

func isIdentByte(ch byte) bool { return isIdentStart(ch) || isDigit(ch) || ch == '$' }

// downcase folds an unquoted identifier as PostgreSQL does in a UTF-8
// database: ASCII letters only ("Äpfel" stays "Äpfel").
func downcase(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// reservedWords are PostgreSQL's reserved keywords (categories R and T of
// pg_get_keywords()): unquoted, they never name a column.
var reservedWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`all analyse analyze and any array as asc asymmetric both case cast check
		collate column constraint create current_catalog current_date current_role current_time
		current_timestamp current_user default deferrable desc distinct do else end except false fetch for
		foreign from grant group having in initially intersect into lateral leading limit localtime
		localtimestamp not null offset on only or order placing primary references returning select
		session_user some symmetric table then to trailing true union unique user using variadic when
		where window with
		authorization binary collation concurrently cross current_schema freeze full ilike inner is isnull
		join left like natural notnull outer overlaps right similar tablesample verbose`) {
		reservedWords[w] = true
	}
}

// typeWords continue a type name after its first word: character varying,
// double precision, timestamp with time zone, interval day to second.
var typeWords = map[string]bool{
	"varying": true, "precision": true, "with": true, "without": true, "time": true, "zone": true,
	"to": true, "year": true, "month": true, "day": true, "hour": true, "minute": true, "second": true,
}

// intervalFields are the words of an interval's field specification.
var intervalFields = map[string]bool{"year": true, "month": true, "day": true, "hour": true, "minute": true, "second": true}

// columnRefs reports, for each Token, whether it is an identifier in a
// position where it can name a column. Not a column: a reserved keyword; a
// function name (followed by "("); a qualifier (followed by "."), though the
// last part of a qualified name is a column; a field of a composite value
// ("(x).f"); a type (after "::", after AS in CAST, or before a string
// literal as in date '2024-01-01'); a collation; AT TIME ZONE; the fields of
// an interval ('1' day to second); the field of EXTRACT; NULLS FIRST/LAST; a
// table before USING, as in the text of an index definition
// ("public.t USING btree (c)"), which callers rename too; the columns of
// the other table in a foreign key's "REFERENCES t (c)".
func columnRefs(toks []Token) []bool {
	refs := make([]bool, len(toks))
	notRef := make([]bool, len(toks))
	next := func(i int) int {
		for j := i + 1; j < len(toks); j++ {
			if toks[j].significant() {
				return j
			}
		}
		return -1
	}
	prev := func(i int) int {
		for j := i - 1; j >= 0; j-- {
			if toks[j].significant() {
				return j
			}
		}
		return -1
	}
	is := func(j int, text string) bool { return j >= 0 && toks[j].Kind == Other && toks[j].Text == text }
	isKw := func(j int, kw string) bool { return j >= 0 && toks[j].keyword(kw) }
	isWordIn := func(j int, set map[string]bool) bool {
		return j >= 0 && toks[j].IsID && !toks[j].Quoted && set[toks[j].Name]
	}
	// closer[i] is the index of the bracket closing the one at i, or -1.
	closer := make([]int, len(toks))
	var open []int
	for i := range toks {
		closer[i] = -1
		switch {
		case is(i, "(") || is(i, "["):
			open = append(open, i)
		case (is(i, ")") || is(i, "]")) && len(open) > 0:
			closer[open[len(open)-1]] = i
			open = open[:len(open)-1]
		}
	}
	// skipTypeTail marks the words of a type that follow its head, the
	// chain ending at Token last: character varying, double precision,
	// timestamp(3) with time zone, interval day to second, int[].
	skipTypeTail := func(last int) {
		for j := next(last); j >= 0; j = next(j) {
			switch {
			case is(j, "(") || is(j, "["):
				if j = closer[j]; j < 0 {
					return
				}
			case isWordIn(j, typeWords):
				notRef[j] = true
			default:
				return
			}
		}
	}
	for i := 0; i < len(toks); i++ {
		if !toks[i].IsID || notRef[i] {
			continue
		}
		// The chain a.b.c starting here.
		chain := []int{i}
		for {
			dot := next(chain[len(chain)-1])
			if !is(dot, ".") {
				break
			}
			id := next(dot)
			if id < 0 || !toks[id].IsID {
				break
			}
			chain = append(chain, id)
		}
		last := chain[len(chain)-1]
		p, nx := prev(i), next(last)
		tok := toks[i]
		i = last
		single := len(chain) == 1
		word := single && !tok.Quoted // may be a keyword
		switch {
		case word && tok.Name == "at" && isKw(nx, "time"):
			notRef[nx] = true
			if z := next(nx); isKw(z, "zone") {
				notRef[z] = true
			}
			continue
		case word && tok.Name == "to" && isWordIn(p, intervalFields) && isWordIn(nx, intervalFields):
			notRef[nx] = true
			continue
		case word && tok.Name == "nulls" && (isKw(nx, "first") || isKw(nx, "last")):
			notRef[nx] = true
			continue
		case word && reservedWords[tok.Name]:
			continue
		case isKw(nx, "using"):
			continue // a table: ON public.t USING btree (...), JOIN t USING (...)
		case is(p, "::") || isKw(p, "as"):
			skipTypeTail(last)
			continue
		case is(nx, "("):
			if isKw(p, "references") && closer[nx] > nx {
				// REFERENCES t (a, b): columns of the other table.
				for j := nx; j < closer[nx]; j++ {
					notRef[j] = true
				}
			}
			continue // a function, or the table of a foreign key
		case single && is(p, "."):
			continue // a field of a composite value: (x).f
		case isKw(p, "collate"):
			continue
		case nx >= 0 && toks[nx].Kind == String:
			continue // a typed literal: date '2024-01-01'
		case word && p >= 0 && toks[p].Kind == String:
			continue // a keyword after a literal: interval '1' day
		case single && is(p, "(") && isKw(prev(p), "extract"):
			continue // EXTRACT(field FROM ...)
		case single && is(nx, "."):
			continue // a qualifier of something that is not a name: t.*
		}
		refs[last] = true
	}
	return refs
}

// ReferencedColumns returns which of names the expression mentions as a
// column. It may over-report (a name that is also a keyword), never under-report
// a plain, quoted or qualified reference.
func ReferencedColumns(expr string, names []string) []string {
	toks := Lex(expr)
	refs := columnRefs(toks)
	used := map[string]bool{}
	for i, t := range toks {
		if refs[i] {
			used[t.Name] = true
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
	toks := Lex(expr)
	refs := columnRefs(toks)
	var b strings.Builder
	for i, t := range toks {
		if refs[i] {
			if to, ok := m[t.Name]; ok {
				b.WriteString(pg.Ident(to))
				continue
			}
		}
		b.WriteString(t.Text)
	}
	return b.String()
}

// valueWords are non-reserved words that an expression may hold where a
// column could stand (x IS UNKNOWN, IS NFC NORMALIZED, IS JSON OBJECT...):
// never reported as unknown columns.
var valueWords = map[string]bool{
	"unknown": true, "normalized": true, "nfc": true, "nfd": true, "nfkc": true, "nfkd": true,
	"json": true, "value": true, "scalar": true, "object": true, "keys": true, "system_user": true,
}

// UnqualifiedColumns returns the unqualified names that expr uses where a
// column can stand, once each, in order. ok is false when the expression
// holds a subquery: its FROM brings names the row does not have, so no
// name can be said to be unknown.
func UnqualifiedColumns(expr string) (names []string, ok bool) {
	toks := Lex(expr)
	for _, t := range toks {
		if t.keyword("select") {
			return nil, false
		}
	}
	refs := columnRefs(toks)
	seen := map[string]bool{}
	for i, t := range toks {
		if !refs[i] || (!t.Quoted && valueWords[t.Name]) || seen[t.Name] {
			continue
		}
		// The last part of a.b is marked too: skip qualified names.
		p := i - 1
		for p >= 0 && !toks[p].significant() {
			p--
		}
		if p >= 0 && toks[p].Kind == Other && toks[p].Text == "." {
			continue
		}
		seen[t.Name] = true
		names = append(names, t.Name)
	}
	return names, true
}
