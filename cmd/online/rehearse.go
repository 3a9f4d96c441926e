package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/rehearse"
)

// errRehearsalFailed is returned after the report of a rehearsal that
// found the migrations would fail: exit code 1.
var errRehearsalFailed = errors.New("the rehearsal failed: see the errors above")

func newRehearseCmd(g *globals) *cobra.Command {
	var targetURL, sample string
	var asJSON bool
	var writes int
	cmd := &cobra.Command{
		Use:   "rehearse FILE|DIR",
		Short: "Run migrations on a copy of the database first: would they succeed, how long, which locks",
		Long: `rehearse copies the schema and the rows (all, or a sample) of the database into a
new scratch database (on the same server, or on --target-url), reading the live
database only (read-only session, one snapshot, ACCESS SHARE locks under a short
lock_timeout). On the copy it runs start, writes through both versions, then
complete; then, on a fresh copy, start, writes and rollback. It reports each
phase's duration (and scaled to the live table sizes), the locks taken, the
longest wait a probe session saw, the backfill rate, table growth and every
error. The copies are dropped at the end. Exit 0 when it would succeed, 1 when not.

DIR: every .yaml, .yml and .json file of the directory, in name order.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			smp, err := rehearse.ParseSample(sample)
			if err != nil {
				return usageError{err}
			}
			files, err := migrationFiles(args[0])
			if err != nil {
				return usageError{err}
			}
			var migs []rehearse.Migration
			for _, f := range files {
				m, err := operations.ParseFile(f)
				if err != nil {
					return err
				}
				migs = append(migs, rehearse.Migration{File: f, Migration: m})
			}
			cfg := g.config()
			rep, err := rehearse.Run(cmd.Context(), rehearse.Options{
				SourceURL: cfg.URL, TargetURL: targetURL, Schema: cfg.Schema, StateSchema: cfg.StateSchema,
				Sample: smp, LockTimeout: cfg.LockTimeout, LockRetryDeadline: cfg.LockRetryDeadline, Writes: writes, Log: g.log,
			}, migs)
			if err != nil {
				if cerr := cmd.Context().Err(); cerr != nil {
					// Ctrl-C: exit 130, whatever error the cancel surfaced as.
					return fmt.Errorf("rehearse interrupted (its databases were dropped): %w", errors.Join(cerr, err))
				}
				return err
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				fmt.Fprint(cmd.OutOrStdout(), rep.String())
			}
			if !rep.Success {
				return errRehearsalFailed
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&targetURL, "target-url", "", "make the copies on this server (any database of it, e.g. a staging server) instead of the live one")
	cmd.Flags().StringVar(&sample, "sample", "all", "rows copied per table: all, a count (the first N rows a scan meets), or a fraction (0.1) or percentage (10%) sampled at random. A sample can miss the rows a migration would fail on")
	cmd.Flags().IntVar(&writes, "writes", 3, "rows inserted and updated through each version in each table")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// migrationFiles is the file itself, or the migration files of a directory
// in name order.
func migrationFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []string
	for _, e := range ents {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if !e.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
			out = append(out, filepath.Join(path, e.Name()))
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("read migrations: no .yaml, .yml or .json file in %s", path)
	}
	return out, nil
}
