package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/onlinepg/online/internal/pgtest"
)

// TestJSONOnEveryCommand: every command a script may run takes --json
// (issue 22, case 9), save those whose output is already a document or
// is for a terminal.
func TestJSONOnEveryCommand(t *testing.T) {
	t.Parallel()
	exempt := map[string]string{
		"demo":       "a walk-through for people",
		"gen-docs":   "writes the repository's reference pages",
		"schema":     "its output is a JSON Schema already",
		"completion": "shell code",
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		path := strings.TrimPrefix(c.CommandPath(), "online ")
		top := strings.Fields(path)[0]
		if c.HasParent() && c.Runnable() && !c.HasAvailableSubCommands() && exempt[top] == "" && c.Flags().Lookup("json") == nil {
			t.Errorf("online %s has no --json", path)
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(docsRoot())
}

// TestJSONOutputs: the commands that gained --json print one JSON
// document with the fields docs/reference/json-output.md names.
func TestJSONOutputs(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	conn := pgtest.Connect(t, url)
	pgtest.Exec(t, conn, "CREATE TABLE users (id bigserial PRIMARY KEY)")
	db := []string{"--database-url", url}
	dir := t.TempDir()
	sql := writeFile(t, dir, "up.sql", "ALTER TABLE users ADD COLUMN nick text;\n")
	desired := writeFile(t, dir, "desired.sql", "CREATE TABLE users (id bigserial PRIMARY KEY, nick text);\n")
	out := filepath.Join(dir, "out.yaml")
	cases := []struct {
		name string
		args []string
		code int
		// check reads the document; it returns what is wrong, or "".
		check func(doc map[string]any) string
	}{
		{"latest", append([]string{"latest", "--json"}, db...), 0, func(d map[string]any) string {
			if d["schema"] != "public" || d["latest"] != "public" {
				return "want schema and latest public"
			}
			return ""
		}},
		{"init", append([]string{"init", "--json"}, db...), 0, func(d map[string]any) string {
			if d["state_schema"] != "online" {
				return "want state_schema online"
			}
			return ""
		}},
		{"version", []string{"version", "--json"}, 0, func(d map[string]any) string {
			if v, _ := d["version"].(string); v == "" {
				return "want a version"
			}
			return ""
		}},
		{"convert to stdout", []string{"convert", sql, "--json"}, 0, func(d map[string]any) string {
			files, _ := d["files"].([]any)
			if len(files) != 1 || !strings.Contains(files[0].(map[string]any)["yaml"].(string), "add_column") {
				return "want one file whose yaml adds the column"
			}
			return ""
		}},
		{"convert -o", []string{"convert", sql, "-o", out, "--json"}, 0, func(d map[string]any) string {
			files, _ := d["files"].([]any)
			if len(files) != 1 || files[0].(map[string]any)["path"] != out {
				return "want the path written"
			}
			return ""
		}},
		{"diff to stdout", append([]string{"diff", desired, "--no-verify", "--json"}, db...), 0, func(d map[string]any) string {
			if m, _ := d["migration"].(string); !strings.Contains(m, "add_column") || d["operations"] != float64(1) {
				return "want the migration, one add_column"
			}
			return ""
		}},
		{"history", append([]string{"history", "--json"}, db...), 0, nil},
	}
	for _, tc := range cases {
		r := runCLI(t, tc.args...)
		if r.code != tc.code {
			t.Errorf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", tc.name, r.code, tc.code, r.stdout, r.stderr)
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Errorf("%s: stdout is not one JSON document (%v): %q", tc.name, err, r.stdout)
			continue
		}
		if tc.check == nil {
			continue
		}
		doc, _ := v.(map[string]any)
		if msg := tc.check(doc); msg != "" {
			t.Errorf("%s: %s: %s", tc.name, msg, r.stdout)
		}
	}
}
