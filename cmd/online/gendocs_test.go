package main

import (
	"os"
	"strings"
	"testing"

	"github.com/onlinepg/online/internal/docgen"
)

// TestReferenceDocsCurrent fails when a generated page of docs/reference
// differs from what the CLI's definitions, the operation registry and
// examples/ make now. Not parallel: it clears the environment variables that
// change flag defaults, which parallel tests (paused until this one ends)
// need.
func TestReferenceDocsCurrent(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); defaultsEnv(k) {
			t.Setenv(k, "")
		}
	}
	files, err := docgen.Generate(docsRoot(), "../..", jsonOutputs)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := docgen.Stale(files, "../..")
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) > 0 {
		t.Fatalf("the generated reference pages are out of date:\n  %s\nregenerate them from the repository root with: %s",
			strings.Join(stale, "\n  "), docgen.RegenerateCommand)
	}
}
