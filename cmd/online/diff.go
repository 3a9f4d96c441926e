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
	"github.com/onlinepg/online/schema"
)

func newDiffCmd(g *globals) *cobra.Command {
	var out, fromURL, toURL, name string
	var renames []string
	cmd := &cobra.Command{
		Use:   "diff [DESIRED.sql]",
		Short: "Write a migration that takes the live schema to the one a SQL file (or another database) describes",
		Long: `diff loads DESIRED.sql (plain DDL: CREATE TABLE, CREATE INDEX, CREATE TYPE...)
into a scratch database of the same server, compares it with the live schema
and writes a migration of online operations. The scratch database is dropped
at the end. With --to-url, the desired schema is read from another database.

Renames look like a drop plus an add: pass --rename old=new (a table) or
--rename table.old=new (a column of the desired table); candidates are listed.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (toURL != "") {
				return usageError{errors.New("give either DESIRED.sql or --to-url")}
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
			cur, err := diff.ReadURL(ctx, live, g.schema)
			if err != nil {
				return err
			}
			var want *schema.Schema
			if toURL != "" {
				want, err = diff.ReadURL(ctx, toURL, g.schema)
			} else {
				var data []byte
				if data, err = os.ReadFile(args[0]); err != nil {
					return usageError{fmt.Errorf("read desired schema: %w", err)}
				}
				want, err = diff.LoadSQL(ctx, live, args[0], string(data), g.schema)
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
			res, err := diff.Compare(cur, want, rs)
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
			if out == "" {
				_, err = cmd.OutOrStdout().Write(text)
				return err
			}
			if err := os.WriteFile(out, text, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", out, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d operation(s)\n", out, len(res.Ops))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the migration to this file (default: stdout)")
	cmd.Flags().StringArrayVar(&renames, "rename", nil, "a rename: old=new (table) or table.old=new (column); repeatable")
	cmd.Flags().StringVar(&fromURL, "from-url", "", "the database to migrate (default: --database-url)")
	cmd.Flags().StringVar(&toURL, "to-url", "", "read the desired schema from this database instead of a SQL file")
	cmd.Flags().StringVar(&name, "name", "", "the migration's name (default: the output file's name)")
	return cmd
}
