package lint

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// annotation is "-- expect: RULE" (a finding a person judged right) or
// "-- false-alarm: RULE (why)" (one judged wrong) on the comment lines
// directly above a statement of the corpus ("#" in migration files).
var annotation = regexp.MustCompile(`^\s*(?:--|#)\s*(expect|false-alarm):\s*([a-z-]+)`)

// TestCorpus lints testdata/corpus (migrations written the way teams
// write them) and holds every finding to the hand-made judgement next to
// the statement: each finding must be annotated, each "expect" found. It
// prints, per rule, what was flagged and how many were false alarms: the
// table in the README.
func TestCorpus(t *testing.T) {
	rep, err := Paths([]string{"testdata/corpus"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Statements < 100 {
		t.Fatalf("the corpus has %d statements; it should have at least 100", rep.Statements)
	}
	type key struct {
		file string
		line int
		rule string
	}
	judged := map[key]string{}
	lines := map[string][]string{}
	for _, f := range filesOf(rep) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines[f] = strings.Split(string(data), "\n")
		ls := lines[f]
		for i, l := range ls {
			if annotation.MatchString(l) {
				continue
			}
			// the comment block directly above line i+1
			for j := i - 1; j >= 0; j-- {
				m := annotation.FindStringSubmatch(ls[j])
				if m == nil {
					if s := strings.TrimSpace(ls[j]); strings.HasPrefix(s, "--") || strings.HasPrefix(s, "#") {
						continue
					}
					break
				}
				judged[key{f, i + 1, m[2]}] = m[1]
			}
		}
	}
	type count struct{ flagged, falseAlarms int }
	perRule := map[string]*count{}
	for _, r := range Rules {
		perRule[r.ID] = &count{}
	}
	seen := map[key]bool{}
	for _, f := range rep.Findings {
		k := key{f.File, f.Line, f.Rule}
		seen[k] = true
		perRule[f.Rule].flagged++
		switch judged[k] {
		case "expect":
		case "false-alarm":
			perRule[f.Rule].falseAlarms++
		default:
			t.Errorf("%s:%d: %s flagged without a judgement in the corpus: %s", f.File, f.Line, f.Rule, f.Message)
		}
	}
	for k, v := range judged {
		if !seen[k] {
			t.Errorf("%s:%d: %s (%s) was not flagged", k.file, k.line, k.rule, v)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "corpus: %d files, %d statements, %d findings\n| rule | flagged | false alarms |\n|---|---|---|\n", rep.Files, rep.Statements, len(rep.Findings))
	ids := make([]string, 0, len(perRule))
	for id := range perRule {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := perRule[id]
		fmt.Fprintf(&b, "| `%s` | %d | %d |\n", id, c.flagged, c.falseAlarms)
	}
	t.Log("\n" + b.String())

	// The findings themselves, as a golden file (-update rewrites it).
	var g strings.Builder
	for _, f := range rep.Findings {
		fmt.Fprintf(&g, "%s:%d:%d: %s: %s\n", f.File, f.Line, f.Col, f.Rule, f.Message)
	}
	golden := "testdata/corpus.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(g.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(want) != g.String() {
		t.Errorf("findings differ from %s (run with -update and review the diff):\n%s", golden, g.String())
	}
}

var update = flag.Bool("update", false, "rewrite testdata/corpus.golden")

func filesOf(rep *Report) []string {
	set := map[string]bool{}
	for _, f := range rep.Findings {
		set[f.File] = true
	}
	var out []string
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}
