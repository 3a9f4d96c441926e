package workflow_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLayers: the workflow is built on phases and the packages below it,
// never the other way: none of them imports workflow (or the CLI), in
// their code or their tests.
func TestLayers(t *testing.T) {
	t.Parallel()
	below := []string{"phases", "operations", "state", "schema", "triggers", "backfill", "appversion"}
	for _, dir := range below {
		files, err := filepath.Glob(filepath.Join("..", dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("package %s: no Go files (%v)", dir, err)
		}
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range parsed.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if p == "github.com/onlinepg/online/workflow" || strings.HasPrefix(p, "github.com/onlinepg/online/cmd/") {
					t.Errorf("%s imports %s: %s sits below the workflow", f, p, dir)
				}
			}
		}
	}
}
