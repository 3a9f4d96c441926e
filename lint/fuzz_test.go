package lint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLint feeds SQL to lint: it must report findings or an input error,
// never panic, and every finding must name a known rule and a position
// inside the input.
func FuzzLint(f *testing.F) {
	for _, tc := range ruleCases {
		f.Add(tc.flagged)
		f.Add(tc.clean)
	}
	files, _ := filepath.Glob("testdata/corpus/*.sql")
	for _, file := range files {
		data, _ := os.ReadFile(file)
		f.Add(string(data))
		for _, st := range strings.Split(string(data), ";") {
			f.Add(st + ";")
		}
	}
	f.Fuzz(func(t *testing.T, sql string) {
		rep, err := Source("fuzz.sql", []byte(sql))
		if err != nil {
			return
		}
		lines := strings.Count(sql, "\n") + 1
		for _, fd := range append(rep.Findings, rep.Ignored...) {
			if ruleByID(fd.Rule) == nil || fd.Line < 1 || fd.Line > lines || fd.Col < 1 {
				t.Fatalf("bad finding %+v for %q", fd, sql)
			}
		}
	})
}
