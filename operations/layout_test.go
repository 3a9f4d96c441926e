package operations

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestSharedFilesNameNoOperation keeps calls pointing one way: operation
// files use the shared techniques, never the other way round. A shared
// file (one that declares no registered operation type; registry.go is the
// one place that lists them) must not name an operation type: what differs
// per operation is a method in the operation's own file, behind one of the
// small interfaces the shared files declare (sqlFielder, upDowner,
// exprFielder, tabled, typeCreator, inverter). Each shared file is also
// listed in doc.go, and each operation file has its tests beside it: the
// compile tests in <name>_test.go, the lifecycle in <name>_lifecycle_test.go.
func TestSharedFilesNameNoOperation(t *testing.T) {
	t.Parallel()
	opTypes := map[string]bool{}
	for _, name := range Names() {
		opTypes[reflect.TypeOf(registry[name]()).Elem().Name()] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	declared := map[string]string{} // operation type -> its file
	var shared []string
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") || path == "doc.go" {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		declares := false
		ast.Inspect(f, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok && opTypes[ts.Name.Name] {
				declared[ts.Name.Name], declares = path, true
			}
			return true
		})
		if declares || path == "registry.go" {
			continue
		}
		shared = append(shared, path)
		for _, name := range typeRefs(f, opTypes) {
			t.Errorf("%s: shared file names operation type %s at %s", path, name.Name, fset.Position(name.Pos()))
		}
		if !strings.Contains(string(doc), path) {
			t.Errorf("doc.go does not list the shared file %s", path)
		}
	}
	for typ, path := range declared {
		base := strings.TrimSuffix(path, ".go")
		tests := []string{base + "_test.go", base + "_lifecycle_test.go"}
		if noLifecycle[base] != "" {
			tests = tests[:1]
		}
		for _, test := range tests {
			if _, err := os.Stat(test); err != nil {
				t.Errorf("operation %s (%s) has no %s beside it", typ, path, test)
			}
		}
	}
	if len(declared) != len(opTypes) {
		t.Errorf("found %d of the %d registered operation types declared", len(declared), len(opTypes))
	}
	if !slices.Contains(shared, "compile.go") {
		t.Errorf("compile.go not among the shared files %v", shared)
	}
}

// noLifecycle names the operations without a <name>_lifecycle_test.go, and
// why.
var noLifecycle = map[string]string{}

// typeRefs are the identifiers of f naming one of types, leaving out
// field and method names (x.RawSQL, a struct's RawSQL field, a key in a
// struct literal), which are no reference to the type.
func typeRefs(f *ast.File, types map[string]bool) []*ast.Ident {
	skip := map[*ast.Ident]bool{}
	var refs []*ast.Ident
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			skip[n.Sel] = true
		case *ast.Field:
			for _, id := range n.Names {
				skip[id] = true
			}
		case *ast.KeyValueExpr:
			if id, ok := n.Key.(*ast.Ident); ok {
				skip[id] = true
			}
		case *ast.Ident:
			if types[n.Name] && !skip[n] {
				refs = append(refs, n)
			}
		}
		return true
	})
	return refs
}
