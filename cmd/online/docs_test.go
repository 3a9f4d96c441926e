package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/onlinepg/online/internal/pgtest"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/workflow"
)

// The docs test reads README.md and every page of docs/ the way a reader
// would follow them. Fenced blocks carry markers after their language:
//
//	```sql setup                  run on the page's database before what follows
//	```sql run search_path=S      run through version schema S (an application);
//	                              with rows=N, one query that must return N rows
//	```yaml migration             a migration file: parsed, then started, rolled
//	                              back, started again and completed
//	```yaml migration file=P      written to P in the page's directory, for the
//	                              commands of the runnable blocks after it
//	```yaml output                what a command prints: parsed, not run
//	```sh runnable                every line an online command, run in order;
//	                              each must exit 0
//
// Every YAML or JSON block that holds a migration must be marked migration or
// output, and every online command in a shell block of any page must parse
// against the CLI's own flags and arguments.

const repoRoot = "../.."

type docBlock struct {
	file    string // relative to the repository root
	line    int    // of the opening fence
	lang    string
	markers map[string]string // "runnable" -> "", "file" -> "migrations/001.yaml"
	body    string
}

func (b docBlock) where() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

func (b docBlock) has(m string) bool { _, ok := b.markers[m]; return ok }

// docPages lists README.md and the Markdown files under docs/.
func docPages(t *testing.T) []string {
	t.Helper()
	pages := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(repoRoot, "docs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, err := filepath.Rel(repoRoot, p)
			if err != nil {
				return err
			}
			pages = append(pages, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 10 {
		t.Fatalf("only %d pages found: is docs/ there?", len(pages))
	}
	return pages
}

func readPage(t *testing.T, page string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, page))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// blocks splits a page into its fenced blocks; prose gets the text outside
// them, with each line in place (fenced lines blanked).
func blocks(page, text string) (out []docBlock, prose []string) {
	lines := strings.Split(text, "\n")
	var cur *docBlock
	var body []string
	fence := ""
	for i, l := range lines {
		trimmed := strings.TrimLeft(l, " ")
		if cur == nil {
			if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
				fence = trimmed[:3]
				info := strings.Fields(strings.TrimLeft(trimmed, "`~"))
				cur = &docBlock{file: page, line: i + 1, markers: map[string]string{}}
				if len(info) > 0 {
					cur.lang = info[0]
					for _, m := range info[1:] {
						k, v, _ := strings.Cut(m, "=")
						cur.markers[k] = v
					}
				}
				body = nil
				prose = append(prose, "")
				continue
			}
			prose = append(prose, l)
			continue
		}
		prose = append(prose, "")
		if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
			cur.body = strings.Join(body, "\n") + "\n"
			out = append(out, *cur)
			cur = nil
			continue
		}
		body = append(body, l)
	}
	return out, prose
}

var (
	linkRe       = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	codeSpanRe   = regexp.MustCompile("`[^`]*`")
	headingRe    = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	slugStripRe  = regexp.MustCompile(`[^\p{L}\p{N}\s_-]`)
	htmlAnchorRe = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
)

// anchors are the fragment names GitHub gives the headings of a page.
func anchors(prose []string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, l := range prose {
		for _, m := range htmlAnchorRe.FindAllStringSubmatch(l, -1) {
			out[m[1]] = true
		}
		m := headingRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		// Link text stays, link targets go, as GitHub renders them.
		h := regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(m[2], "$1")
		slug := strings.ReplaceAll(slugStripRe.ReplaceAllString(strings.ToLower(h), ""), " ", "-")
		if n := seen[slug]; n > 0 {
			out[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// TestDocsLinks: every relative link of README.md and docs/ reaches a file
// or directory of the repository, and every #fragment a heading of its page.
func TestDocsLinks(t *testing.T) {
	t.Parallel()
	pages := docPages(t)
	proseOf := map[string][]string{}
	for _, p := range pages {
		_, proseOf[p] = blocks(p, readPage(t, p))
	}
	checked := 0
	for _, page := range pages {
		for n, l := range proseOf[page] {
			l = codeSpanRe.ReplaceAllString(l, "")
			for _, m := range linkRe.FindAllStringSubmatch(l, -1) {
				target := m[1]
				if u, err := url.Parse(target); err == nil && u.Scheme != "" {
					continue // http(s), mailto: not this test's business
				}
				checked++
				pathPart, frag, _ := strings.Cut(target, "#")
				dest := page
				if pathPart != "" {
					if strings.HasPrefix(pathPart, "/") {
						t.Errorf("%s:%d: link %q is absolute: links must be relative to the page", page, n+1, target)
						continue
					}
					dest = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(page), pathPart)))
					if strings.HasPrefix(dest, "../") {
						t.Errorf("%s:%d: link %q leaves the repository", page, n+1, target)
						continue
					}
					info, err := os.Stat(filepath.Join(repoRoot, dest))
					if err != nil {
						t.Errorf("%s:%d: link %q: %s does not exist", page, n+1, target, dest)
						continue
					}
					if info.IsDir() {
						if frag != "" {
							t.Errorf("%s:%d: link %q: a fragment on a directory", page, n+1, target)
						}
						continue
					}
				}
				if frag == "" || !strings.HasSuffix(dest, ".md") {
					continue
				}
				prose, ok := proseOf[dest]
				if !ok {
					_, prose = blocks(dest, readPage(t, dest))
				}
				if !anchors(prose)[frag] {
					t.Errorf("%s:%d: link %q: %s has no heading #%s", page, n+1, target, dest, frag)
				}
			}
		}
	}
	if checked < 50 {
		t.Fatalf("only %d relative links checked: is the link pattern broken?", checked)
	}
}

// TestDocsNoOutsidePaths: nothing a user reads points outside the
// repository (an absolute path of the machine the docs were written on).
func TestDocsNoOutsidePaths(t *testing.T) {
	t.Parallel()
	bad := regexp.MustCompile(`/work/|/home/|shared/FORMAT|\bFORMAT\.md`)
	for _, page := range docPages(t) {
		for n, l := range strings.Split(readPage(t, page), "\n") {
			if bad.MatchString(l) {
				t.Errorf("%s:%d: a path outside the repository: %s", page, n+1, l)
			}
		}
	}
	// The template online create writes points at the format page, which
	// must exist here.
	const prefix = "https://github.com/onlinepg/online/blob/main/"
	i := strings.Index(workflow.Template, prefix)
	if i < 0 {
		t.Fatalf("the template of online create links to no page of the repository:\n%s", workflow.Template)
	}
	rest := workflow.Template[i+len(prefix):]
	rel := rest[:strings.IndexAny(rest, " \n)")]
	if _, err := os.Stat(filepath.Join(repoRoot, rel)); err != nil {
		t.Errorf("the template of online create links to %s: %v", rel, err)
	}
}

var shellLangs = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true}

// shellWords splits a command line as a POSIX shell would for the cases the
// docs use: words, single and double quotes, backslashes. Comments start at
// an unquoted # that begins a word.
func shellWords(line string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord, quote := false, rune(0)
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else if r == '\\' && quote == '"' && i+1 < len(rs) {
				i++
				w.WriteRune(rs[i])
			} else {
				w.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == '\\' && i+1 < len(rs):
			i++
			w.WriteRune(rs[i])
			inWord = true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case r == '#' && !inWord:
			i = len(rs)
		case strings.ContainsRune("|&;<>", r):
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			words = append(words, string(r))
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", line)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

var (
	substRe  = regexp.MustCompile(`\$\((online [^)]*)\)`)
	envVarRe = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)
)

// onlineCommands finds the online invocations of one shell line: each
// command of a pipeline or list whose program is online (or go run
// ./cmd/online), and each $(online ...) in it.
func onlineCommands(line string) ([][]string, error) {
	line = strings.TrimPrefix(strings.TrimSpace(line), "$ ")
	var out [][]string
	for _, m := range substRe.FindAllStringSubmatch(line, -1) {
		w, err := shellWords(m[1])
		if err != nil {
			return nil, err
		}
		out = append(out, w[1:])
	}
	line = substRe.ReplaceAllString(line, "X")
	words, err := shellWords(line)
	if err != nil {
		return nil, err
	}
	var cmd []string
	flush := func() {
		for len(cmd) > 0 && envVarRe.MatchString(cmd[0]) {
			cmd = cmd[1:]
		}
		if len(cmd) >= 3 && cmd[0] == "go" && cmd[1] == "run" && cmd[2] == "./cmd/online" {
			cmd = append([]string{"online"}, cmd[3:]...)
		}
		if len(cmd) > 0 && cmd[0] == "online" {
			out = append(out, cmd[1:])
		}
		cmd = nil
	}
	for i := 0; i < len(words); i++ {
		switch words[i] {
		case "|", "&", ";":
			flush()
		case ">", "<":
			i++ // the redirection's file
		default:
			cmd = append(cmd, words[i])
		}
	}
	flush()
	return out, nil
}

// checkArgs parses one online command line as the CLI would, without running
// it: the command must exist, its flags parse and its arguments fit.
func checkArgs(args []string) error {
	root := docsRoot()
	root.InitDefaultVersionFlag() // cobra adds these two when it executes
	c, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	c.InitDefaultHelpFlag()
	if err := c.ParseFlags(rest); err != nil {
		return err
	}
	pos := c.Flags().Args()
	if c == root && len(pos) > 0 {
		return fmt.Errorf("unknown command %q", pos[0])
	}
	if c.Args != nil {
		return c.ValidateArgs(pos)
	}
	return cobra.ArbitraryArgs(c, pos)
}

// TestDocsShellSyntax: every online command shown in a shell block of the
// docs parses with the CLI's own flags and arguments.
func TestDocsShellSyntax(t *testing.T) {
	t.Parallel()
	checked := 0
	for _, page := range docPages(t) {
		bs, _ := blocks(page, readPage(t, page))
		for _, b := range bs {
			if !shellLangs[b.lang] {
				continue
			}
			// A backslash at the end of a line continues it.
			body := strings.ReplaceAll(b.body, "\\\n", " ")
			for i, line := range strings.Split(body, "\n") {
				cmds, err := onlineCommands(line)
				if err != nil {
					t.Errorf("%s (line %d of the block): %v", b.where(), i+1, err)
					continue
				}
				for _, args := range cmds {
					checked++
					if err := checkArgs(args); err != nil {
						t.Errorf("%s (line %d of the block): online %s: %v", b.where(), i+1, strings.Join(args, " "), err)
					}
				}
			}
		}
	}
	if checked < 30 {
		t.Fatalf("only %d online commands found in the docs: is the parser broken?", checked)
	}
}

// expectExitRe is how a runnable line says it must fail: "# expect exit 4".
var expectExitRe = regexp.MustCompile(`#\s*expect exit (\d+)\s*$`)

var migrationLine = regexp.MustCompile(`(?m)^(operations:|\{?\s*"operations"\s*:)`)

// TestDocsMigrationsMarked: a migration shown in the docs is either run by
// TestDocsExamplesRun (marked migration) or the output of a command (marked
// output); both must parse.
func TestDocsMigrationsMarked(t *testing.T) {
	t.Parallel()
	for _, page := range docPages(t) {
		bs, _ := blocks(page, readPage(t, page))
		for _, b := range bs {
			if b.lang != "yaml" && b.lang != "json" {
				continue
			}
			if !migrationLine.MatchString(b.body) {
				if b.has("migration") {
					t.Errorf("%s: marked migration but holds no operations", b.where())
				}
				continue
			}
			if !b.has("migration") && !b.has("output") {
				t.Errorf("%s: a migration file shown in the docs must be marked `%s migration` (run by the docs test) or `%s output` (what a command prints)", b.where(), b.lang, b.lang)
				continue
			}
			name := "doc." + b.lang
			if f := b.markers["file"]; f != "" {
				name = filepath.Base(f)
			}
			if _, err := operations.Parse(name, []byte(b.body)); err != nil {
				t.Errorf("%s: %v", b.where(), err)
			}
		}
	}
}

// TestDocsExamplesRun follows each page that has runnable blocks, in order,
// on a database of its own: setup SQL, migration files (each run through
// start, rollback, start and complete unless a later command uses it),
// online commands, and SQL through a version schema.
func TestDocsExamplesRun(t *testing.T) {
	t.Parallel()
	ran := 0
	for _, page := range docPages(t) {
		bs, _ := blocks(page, readPage(t, page))
		var steps []docBlock
		for _, b := range bs {
			if b.has("setup") || b.has("run") || b.has("runnable") || b.has("migration") {
				steps = append(steps, b)
			}
		}
		if len(steps) == 0 {
			continue
		}
		ran += len(steps)
		t.Run(page, func(t *testing.T) {
			t.Parallel()
			followPage(t, steps)
		})
	}
	if ran < 10 {
		t.Fatalf("only %d runnable blocks in the docs", ran)
	}
}

func followPage(t *testing.T, steps []docBlock) {
	dbURL := pgtest.NewDB(t)
	db := pgtest.Connect(t, dbURL)
	dir := t.TempDir()
	ctx := context.Background()
	cli := func(b docBlock, want int, args ...string) {
		t.Helper()
		for i, a := range args {
			if a == "" || strings.HasPrefix(a, "-") {
				continue
			}
			// A path (it exists in the page's directory, or names a
			// directory or a file) is the page's, not the test's.
			_, err := os.Stat(filepath.Join(dir, a))
			if err == nil || strings.Contains(a, "/") || regexp.MustCompile(`\.(ya?ml|json|sql)$`).MatchString(a) {
				args[i] = filepath.Join(dir, a)
			}
		}
		var out, errb bytes.Buffer
		all := append(append([]string{}, args...), "--database-url", dbURL, "--log-format=json")
		if code := run(ctx, all, &out, &errb); code != want {
			t.Fatalf("%s: online %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", b.where(), strings.Join(args, " "), code, want, out.String(), errb.String())
		}
	}
	for n, b := range steps {
		switch {
		case b.lang == "sql" && b.has("setup"):
			if _, err := db.Exec(ctx, b.body); err != nil {
				t.Fatalf("%s: setup SQL: %v", b.where(), err)
			}
		case b.lang == "sql" && b.has("run"):
			sp := b.markers["search_path"]
			if sp == "" {
				t.Fatalf("%s: sql run needs search_path=SCHEMA", b.where())
			}
			u, err := url.Parse(dbURL)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			q.Set("search_path", sp)
			u.RawQuery = q.Encode()
			app := pgtest.Connect(t, u.String())
			if _, ok := b.markers["rows"]; !ok {
				if _, err := app.Exec(ctx, b.body); err != nil {
					t.Fatalf("%s: SQL through %s: %v", b.where(), sp, err)
				}
				break
			}
			// rows=N: one query, which must return N rows.
			want, err := strconv.Atoi(b.markers["rows"])
			if err != nil {
				t.Fatalf("%s: rows=%q: %v", b.where(), b.markers["rows"], err)
			}
			rows, err := app.Query(ctx, b.body)
			if err != nil {
				t.Fatalf("%s: SQL through %s: %v", b.where(), sp, err)
			}
			got := 0
			for rows.Next() {
				got++
			}
			if err := rows.Err(); err != nil {
				t.Fatalf("%s: SQL through %s: %v", b.where(), sp, err)
			}
			if got != want {
				t.Fatalf("%s: SQL through %s returned %d rows, the page says %d", b.where(), sp, got, want)
			}
		case b.has("migration"):
			name := b.markers["file"]
			if name == "" {
				name = "doc_" + strconv.Itoa(b.line) + "." + b.lang
			}
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(b.body), 0o644); err != nil {
				t.Fatal(err)
			}
			if b.markers["file"] != "" {
				continue // a later command of the page runs it
			}
			cli(b, 0, "start", name)
			cli(b, 0, "rollback")
			cli(b, 0, "start", name)
			cli(b, 0, "complete")
		case b.has("runnable") && shellLangs[b.lang]:
			for i, line := range strings.Split(b.body, "\n") {
				want := 0
				if m := expectExitRe.FindStringSubmatch(line); m != nil {
					want, _ = strconv.Atoi(m[1])
				}
				words, err := shellWords(line)
				if err != nil {
					t.Fatalf("%s: %v", b.where(), err)
				}
				if len(words) == 0 {
					continue
				}
				if words[0] != "online" || strings.ContainsAny(strings.Join(words, " "), "|&;<>") {
					t.Fatalf("%s (line %d of the block): a runnable block holds online commands only, got %q", b.where(), i+1, line)
				}
				cli(b, want, words[1:]...)
			}
		default:
			t.Fatalf("%s: block %d: a %s block marked %v is nothing the docs test can run", b.where(), n, b.lang, b.markers)
		}
	}
}
