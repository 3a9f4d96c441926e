package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/onlinepg/online/lint"
)

// errFindings makes `online lint` exit 1 when it found something.
var errFindings = errors.New("lint found statements that lock or break a live database")

func newLintCmd(g *globals) *cobra.Command {
	var asJSON, rules bool
	cmd := &cobra.Command{
		Use:   "lint PATH...",
		Short: "Find statements in SQL or migration files that lock or break a live database",
		Long: `Lint reads SQL files (plain, golang-migrate, goose, Flyway) and online migration
files (their sql operations and add_column defaults), and reports each statement
that locks or breaks a live database: the rule, the line and column, why it
hurts and what to do instead. Directories are read recursively.

Silence one rule on one statement with a comment on the line above it:
  -- online-lint-ignore RULE-ID: the reason

Exit codes: 0 nothing found, 1 findings, 2 a file could not be read or parsed.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if rules {
				return nil
			}
			return cobra.MinimumNArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			if rules {
				if asJSON {
					return writeJSON(w, lint.Rules)
				}
				for _, r := range lint.Rules {
					fmt.Fprintf(w, "%s: %s\n  why: %s\n  instead: %s\n", r.ID, r.Summary, r.Why, r.Instead)
				}
				return nil
			}
			rep, err := lint.Paths(args)
			if err != nil {
				return usageError{err}
			}
			if asJSON {
				if err := writeJSON(w, rep); err != nil {
					return err
				}
			} else {
				for _, f := range rep.Findings {
					fmt.Fprintf(w, "%s:%d:%d: %s: %s\n  %s\n  why: %s\n  instead: %s\n", f.File, f.Line, f.Col, f.Rule, f.Message, f.Statement, f.Why, f.Instead)
				}
				fmt.Fprintf(w, "%d files, %d statements: %d findings, %d ignored\n", rep.Files, rep.Statements, len(rep.Findings), len(rep.Ignored))
			}
			if len(rep.Findings) > 0 {
				return errFindings
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "the report as JSON")
	cmd.Flags().BoolVar(&rules, "rules", false, "list the rules and exit")
	return cmd
}
