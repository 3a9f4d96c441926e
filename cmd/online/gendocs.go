package main

import (
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"github.com/spf13/cobra"

	"github.com/onlinepg/online/internal/docgen"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/workflow"
)

// newGenDocsCmd is the hidden command that writes the generated reference
// pages of docs/ (docgen.RegenerateCommand runs it). It is for the
// repository's maintainers, so it stays out of help and out of the pages.
func newGenDocsCmd() *cobra.Command {
	var repo string
	cmd := &cobra.Command{
		Use:     "gen-docs",
		Short:   "Write the generated reference pages of docs/ (for maintainers)",
		Hidden:  true,
		Example: "  go run ./cmd/online gen-docs   # from the repository root",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := os.Stat(repo + "/go.mod"); err != nil {
				return usageError{fmt.Errorf("run gen-docs from the repository root, or give it with --repo: %w", err)}
			}
			// The flags' defaults read the environment; the pages show the
			// built-in ones, whatever this shell has set.
			clearDefaultsEnv()
			files, err := docgen.Generate(docsRoot(), repo, jsonOutputs)
			if err != nil {
				return err
			}
			if err := docgen.Write(files, repo); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d reference pages under %s/docs/reference\n", len(files), repo)
			return nil
		},
	}
	cmd.Flags().StringVar(&repo, "repo", ".", "the repository root")
	return cmd
}

// jsonOutputs says what each command prints with --json, for the JSON
// output page.
var jsonOutputs = []docgen.JSONOutput{
	{Commands: []string{"start", "backfill", "complete", "rollback", "revert"}, Type: reflect.TypeOf(phases.Result{})},
	{Commands: []string{"status"}, Type: reflect.TypeOf(phases.Status{})},
	{Commands: []string{"status DIR"}, Type: reflect.TypeOf(workflow.DirStatus{})},
	{Commands: []string{"migrate"}, Type: reflect.TypeOf(workflow.MigrateResult{})},
	{Commands: []string{"validate"}, Type: reflect.TypeOf(workflow.ValidateReport{}), Note: "Printed whether the files are valid or not (exit 2 when not): `errors` lists every problem."},
	{Commands: []string{"history"}, Type: reflect.TypeOf([]workflow.HistoryEvent{})},
	{Commands: []string{"create"}, Type: reflect.TypeOf(createJSON{})},
	{Commands: []string{"baseline"}, Type: reflect.TypeOf(workflow.BaselineResult{})},
	{Commands: []string{"pull"}, Type: reflect.TypeOf(workflow.PullResult{})},
	{Commands: []string{"pull --drift"}, Type: reflect.TypeOf(pullDriftJSON{})},
	{Commands: []string{"latest"}, Type: reflect.TypeOf(latestJSON{})},
	{Commands: []string{"diff"}, Type: reflect.TypeOf(diffReport{}), Note: "With `--check`, only `differences` (exit 1 when there are any). Otherwise the migration's report: `file` with `--output`, or the migration itself in `migration` without it; exit 5 when `differences` or `failed` say the migration does not reach the desired schema."},
	{Commands: []string{"convert"}, Type: reflect.TypeOf(convertReport{})},
	{Commands: []string{"init"}, Type: reflect.TypeOf(initJSON{})},
	{Commands: []string{"version"}, Type: reflect.TypeOf(versionJSON{})},
}

// docsRoot builds the command tree the pages describe, as a user's
// online builds it.
func docsRoot() *cobra.Command {
	return newRootCmd(&globals{stdout: io.Discard, stderr: io.Discard})
}

// defaultsEnv reports whether an environment variable can change a flag's
// default: DATABASE_URL and every ONLINE_ variable.
func defaultsEnv(key string) bool {
	return key == "DATABASE_URL" || strings.HasPrefix(key, "ONLINE_")
}

func clearDefaultsEnv() {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); defaultsEnv(k) {
			os.Unsetenv(k)
		}
	}
}
