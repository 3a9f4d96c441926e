package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/onlinepg/online/diff"
	"github.com/onlinepg/online/internal/pg"
)

func newDiffCmd(g *globals) *cobra.Command {
	var out, fromURL, toURL, name string
	var renames []string
	var noVerify, check, asJSON bool
	cmd := &cobra.Command{
		Use:   "diff [DESIRED.sql]",
		Short: "Write a migration that takes the live schema to the one a SQL file (or another database) describes",
		Long: `diff loads DESIRED.sql (plain DDL: CREATE TABLE, CREATE INDEX, CREATE TYPE...)
into a scratch database of the same server, compares it with the live schema
and writes a migration of online operations. The scratch database is dropped
at the end. With --to-url, the desired schema is read from another database.

Then diff checks its own work: it copies the live schemas (pg_dump
--schema-only) into another scratch database, runs the migration there
through start and complete, and compares the catalog it leaves with the
desired one (tables, columns with types, nullability, defaults and
collations, constraints, indexes, sequences, views, schemas, types,
functions, triggers, policies) in every schema either side has. Each
difference that remains is printed as "not expressed", and diff exits 5: the
file is written, but it does not reach the whole desired schema (run diff
again after it, or write the rest by hand). The copy holds the schema, not
the rows: diff names the operations whose success depends on the rows (a
cast, NOT NULL, a unique key); online rehearse runs the file on a copy with
them.

Schemas other than --schema are changed too, with plain DDL in sql
operations (each with its down): their tables, columns, constraints,
indexes, sequences, views, functions, triggers and policies. A table that
only moved between schemas is moved (ALTER TABLE ... SET SCHEMA).

--check writes no migration: it compares the live schema with the desired
one and exits 1 when they differ (for CI), listing the differences (--json:
as JSON).

Renames look like a drop plus an add: pass --rename old=new (a table) or
--rename table.old=new (a column of the desired table); candidates are listed.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (toURL != "") {
				return usageError{errors.New("give either DESIRED.sql or --to-url")}
			}
			if check && (out != "" || noVerify || len(renames) > 0) {
				return usageError{errors.New("--check writes no migration: it takes no --output, --rename or --no-verify")}
			}
			var rs []diff.Rename
			for _, r := range renames {
				pr, err := diff.ParseRename(r)
				if err != nil {
					return usageError{err}
				}
				rs = append(rs, pr)
			}
			ctx := cmd.Context()
			live := fromURL
			if live == "" {
				live = pg.ResolveURL(g.databaseURL)
			}
			cur, err := diff.ReadSnapshot(ctx, live, g.schema, g.stateSchema)
			if err != nil {
				return err
			}
			var want *diff.Snapshot
			if toURL != "" {
				want, err = diff.ReadDesiredURL(ctx, toURL, g.schema)
			} else {
				var data []byte
				if data, err = os.ReadFile(args[0]); err != nil {
					return usageError{fmt.Errorf("read desired schema: %w", err)}
				}
				want, err = diff.LoadDesired(ctx, live, args[0], string(data), g.schema)
			}
			if cerr := ctx.Err(); err != nil && cerr != nil {
				return fmt.Errorf("diff interrupted (its scratch database was dropped): %w", errors.Join(cerr, err))
			}
			var sqlErr *diff.SQLError
			if errors.As(err, &sqlErr) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			if check {
				v, err := diff.Verify(ctx, live, g.schema, g.stateSchema, nil, 0, want)
				if err != nil {
					return err
				}
				if asJSON {
					if err := writeJSON(cmd.OutOrStdout(), diffReport{Differences: orEmpty(v.Differences)}); err != nil {
						return err
					}
				} else {
					for _, d := range v.Differences {
						fmt.Fprintf(cmd.OutOrStdout(), "differs: %s\n", d)
					}
				}
				if len(v.Differences) > 0 {
					return incompleteError{fmt.Errorf("the live schema differs from the desired one in %d object(s)", len(v.Differences)), exitFailure}
				}
				if !asJSON {
					fmt.Fprintln(cmd.OutOrStdout(), "the live schema is the desired one")
				}
				return nil
			}
			res, err := diff.Plan(cur, want, rs)
			if err != nil {
				return usageError{err}
			}
			if name == "" && out != "" {
				name = strings.TrimSuffix(filepath.Base(out), filepath.Ext(out))
			}
			text, err := res.Render(name)
			if err != nil {
				return err
			}
			for _, rc := range res.RenameCandidates {
				fmt.Fprintf(g.stderr, "rename candidate: %s (pass --rename %s if it is one; written as a drop and an add)\n", rc, rc.Flag())
			}
			for _, u := range res.Unsupported {
				fmt.Fprintf(g.stderr, "not expressed: %s\n", u)
			}
			if res.Review > 0 {
				fmt.Fprintf(g.stderr, "%d operation(s) carry a REVIEW comment: check them before running the file\n", res.Review)
			}
			var v *diff.Verification
			if !noVerify {
				// The check runs on a copy, named after the file only
				// if there is one: the engine wants a migration name.
				vname := name
				if vname == "" {
					vname = "online_diff_verify"
				}
				vtext, err := res.Render(vname)
				if err != nil {
					return err
				}
				if v, err = diff.Verify(ctx, live, g.schema, g.stateSchema, vtext, len(res.Ops), want); err != nil {
					return fmt.Errorf("verify the generated migration (--no-verify skips it): %w", err)
				}
				if v.Failed != nil {
					fmt.Fprintf(g.stderr, "not expressed: the migration does not run on a copy of the live schema: %s\n", v.Failed)
				}
				for _, d := range v.Differences {
					fmt.Fprintf(g.stderr, "not expressed: after this migration, %s\n", d)
				}
				if rs := res.RowSensitive(); len(rs) > 0 && v.Failed == nil {
					// The copy has the schema, not the rows.
					fmt.Fprintf(g.stderr, "checked on a copy without rows: %d operation(s) depend on the rows (%s); start fails on a row that refuses and undoes itself; online rehearse FILE runs it on a copy with the rows\n", len(rs), strings.Join(rs, "; "))
				}
			}
			if out == "" && !asJSON {
				if _, err = cmd.OutOrStdout().Write(text); err != nil {
					return err
				}
			} else {
				if out != "" {
					if err := os.WriteFile(out, text, 0o644); err != nil {
						return fmt.Errorf("write %s: %w", out, err)
					}
				}
				if asJSON {
					r := diffReport{File: out, Operations: len(res.Ops), NotExpressed: orEmpty(res.Unsupported), Verified: v != nil, Differences: []string{}}
					if out == "" {
						r.Migration = string(text)
					}
					if v != nil {
						r.Differences = orEmpty(v.Differences)
						if v.Failed != nil {
							r.Failed = v.Failed.Error()
						}
					}
					if err := writeJSON(cmd.OutOrStdout(), r); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d operation(s)\n", out, len(res.Ops))
				}
			}
			switch {
			case v != nil && (v.Failed != nil || len(v.Differences) > 0):
				n := len(v.Differences)
				if v.Failed != nil {
					return incompleteError{fmt.Errorf("the migration does not run on a copy of the live schema, and %d object(s) stay different from the desired schema (listed above as not expressed)", n), exitIncomplete}
				}
				return incompleteError{fmt.Errorf("after this migration, %d object(s) still differ from the desired schema (listed above as not expressed; checked by running it on a scratch copy)", n), exitIncomplete}
			case v == nil && len(res.Unsupported) > 0:
				return incompleteError{fmt.Errorf("%d difference(s) not expressed (listed above); the migration was not verified (--no-verify)", len(res.Unsupported)), exitIncomplete}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the migration to this file (default: stdout)")
	cmd.Flags().StringArrayVar(&renames, "rename", nil, "a rename: old=new (table) or table.old=new (column); repeatable")
	cmd.Flags().StringVar(&fromURL, "from-url", "", "the database to migrate (default: --database-url)")
	cmd.Flags().StringVar(&toURL, "to-url", "", "read the desired schema from this database instead of a SQL file")
	cmd.Flags().StringVar(&name, "name", "", "the migration's name (default: the output file's name)")
	cmd.Flags().BoolVar(&noVerify, "no-verify", false, "do not run the migration on a scratch copy of the live schema to check that it reaches the desired one")
	cmd.Flags().BoolVar(&check, "check", false, "write no migration: exit 1 when the live schema differs from the desired one, listing the differences")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON (without --output, the migration is in it)")
	return cmd
}

// diffReport is diff's --json output.
type diffReport struct {
	File string `json:"file,omitempty"`
	// Migration is the migration written, without --output.
	Migration    string   `json:"migration,omitempty"`
	Operations   int      `json:"operations"`
	NotExpressed []string `json:"not_expressed,omitempty"`
	Verified     bool     `json:"verified,omitempty"`
	Failed       string   `json:"failed,omitempty"`
	// Differences are the objects that differ from the desired schema:
	// after the migration, or (--check) in the live database.
	Differences []string `json:"differences"`
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
