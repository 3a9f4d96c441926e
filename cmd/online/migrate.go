package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/onlinepg/online/diff"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/schema"
	"github.com/onlinepg/online/workflow"
)

// The team workflow: a directory of migrations applied in order.

func newWorkflowCmds(g *globals) []*cobra.Command {
	return []*cobra.Command{newMigrateCmd(g), newCreateCmd(g), newValidateCmd(g), newBaselineCmd(g), newPullCmd(g), newRevertCmd(g), newHistoryCmd(g)}
}

// workflowErr marks the directory problems that change nothing as usage
// errors (exit 2).
func workflowErr(err error) error {
	var de *workflow.DirError
	var drift *workflow.DriftError
	var ve *workflow.ValidationError
	var ie *operations.IrreversibleError
	var re *workflow.RefusedError
	if errors.As(err, &de) || errors.As(err, &drift) || errors.As(err, &ve) || errors.As(err, &ie) || errors.As(err, &re) || errors.Is(err, workflow.ErrNothingToRevert) {
		return usageError{err}
	}
	return err
}

// loadDir parses a migrations directory of the file system.
func loadDir(dir string) (*workflow.Dir, error) {
	d, err := workflow.LoadPath(dir)
	if err != nil {
		return nil, workflowErr(err)
	}
	return d, nil
}

func newMigrateCmd(g *globals) *cobra.Command {
	var complete, window, oneByOne, asJSON bool
	var to string
	var bf backfillFlags
	cmd := &cobra.Command{
		Use:   "migrate [DIR]",
		Short: "Apply the pending files of a migrations directory in name order; the version in use stays live",
		Long: `migrate applies the pending files of DIR (*.yaml, *.yml, *.json) in name order and
leaves the last migration in progress, both versions live, so that the new
application code can be deployed: then run online complete.

The version applications use now stays live until that complete. One pending
file is started alone; several are applied as one expand/contract step (a
window): the old version is the one before the first pending file, the new one
the version of the last file, one backfill per table, one complete. When the
files cannot join a window (a sql operation must be alone), migrate refuses and
says why: apply fewer at a time with --to FILE, or use --one-by-one.

--one-by-one starts and completes each file before the next (the last stays in
progress): every file's version is published in turn, and the version in use
now is retired at the first complete. --complete completes everything, file by
file, the last one too. --window asks for the window explicitly.

Safe to re-run: with nothing pending it says so and exits 0. A file of DIR in
progress is carried on: resumed if its start was interrupted; reported as it is
if it is the last. With files pending after it, migrate refuses (completing it
would retire the version before it) unless --complete or --one-by-one.

It refuses (exit 2, nothing changed) when an applied file was modified or is
missing, or a pending file sorts before an applied one.`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := g.dirArg(args)
			if err != nil {
				return err
			}
			args = []string{dir}
			d, err := loadDir(dir)
			if err != nil {
				return err
			}
			for _, w := range d.Warnings {
				fmt.Fprintf(g.stderr, "online: warning: %s\n", w)
			}
			cfg, bar := g.withBackfill(cmd, &bf)
			e, err := g.open(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer closeEngine(cmd.Context(), e)
			res, err := e.Migrate(cmd.Context(), d, workflow.MigrateOptions{Complete: complete, Window: window, OneByOne: oneByOne, To: baseOrEmpty(to), OnFile: func(ev workflow.FileEvent) {
				bar.finish()
				fmt.Fprintf(g.stderr, "%s: %s\n", strings.Join(ev.Files, ", "), ev.Action)
			}})
			bar.finish()
			if res != nil && len(res.Warnings) > len(d.Warnings) {
				for _, w := range res.Warnings[len(d.Warnings):] {
					fmt.Fprintf(g.stderr, "online: warning: %s\n", w)
				}
			}
			if err != nil {
				return workflowErr(err)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			switch {
			case len(res.Applied) == 0 && len(res.Completed) == 0 && res.InProgress == "":
				fmt.Fprintf(w, "nothing to migrate: every file of %s is applied.\n", args[0])
			case len(res.Applied) == 0 && len(res.Completed) == 0:
				fmt.Fprintf(w, "nothing pending: %s is in progress (version schema %s); run online complete when the old code is gone.\n", res.InProgress, res.VersionSchema)
			default:
				fmt.Fprintf(w, "applied %d file(s) in %s", len(res.Applied), res.Elapsed.Round(time.Millisecond))
				if len(res.Completed) > 0 {
					fmt.Fprintf(w, ", completed %d", len(res.Completed))
				}
				fmt.Fprintln(w, ".")
				if res.InProgress != "" {
					fmt.Fprintf(w, "%s is in progress: new application code: SET search_path TO %s. When the old code is gone: online complete.\n", res.InProgress, res.VersionSchema)
				} else {
					fmt.Fprintf(w, "latest version: %s\n", res.Latest)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&complete, "complete", false, "complete the last file too")
	cmd.Flags().BoolVar(&window, "window", false, "apply the pending files as one expand/contract step (the default with several pending files)")
	cmd.Flags().BoolVar(&oneByOne, "one-by-one", false, "start and complete each file before the next: the version in use now is retired at the first complete")
	cmd.Flags().StringVar(&to, "to", "", "apply the pending files up to this one (included), leave the rest pending")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	bf.add(cmd)
	addDropDependents(cmd, g)
	return cmd
}

// dirStatus is `online status DIR`.
func dirStatus(cmd *cobra.Command, g *globals, dir string, asJSON bool) error {
	d, err := loadDir(dir)
	if err != nil {
		return err
	}
	e, err := g.open(cmd.Context(), g.config())
	if err != nil {
		return err
	}
	defer closeEngine(cmd.Context(), e)
	st, err := e.DirStatus(cmd.Context(), d)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(cmd.OutOrStdout(), st)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "schema:          %s\nlatest version:  %s\n\n", st.Schema, st.Latest)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tSTATE\tAPPLIED AT\tDURATION\tROWS BACKFILLED\tBY")
	for _, f := range st.Files {
		at, dur, rows, by := "-", "-", "-", "-"
		if f.AppliedAt != nil {
			at = f.AppliedAt.Local().Format("2006-01-02 15:04:05")
		}
		if f.Migration != "" {
			dur = f.Duration.Round(time.Millisecond).String()
			rows = fmt.Sprint(f.RowsDone)
			by = f.AppliedBy
			if f.OSUser != "" {
				by += " (" + f.OSUser + ")"
			}
			if f.Baseline {
				dur, by = "baseline", by+", baseline"
			}
		}
		name := f.File
		if name == "" {
			name = f.Name
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, f.State, at, dur, rows, by)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, warn := range st.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	if dc := st.SchemaDrift; dc != nil && len(dc.Drift) > 0 {
		fmt.Fprintf(w, "\nschema changed outside online since %s:\n", dc.Since)
		for _, d := range dc.Drift {
			fmt.Fprintf(w, "  %s\n", d)
		}
		fmt.Fprintln(w, "record it as a migration file (or undo it): the folder should say what the database is.")
	}
	return nil
}

func newCreateCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create DIR NAME",
		Short: "Write the next migration file of DIR, numbered after the last, from a commented template",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := workflow.CreateFile(args[0], args[1], time.Now())
			if err != nil {
				return workflowErr(err)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), createJSON{File: p})
			}
			fmt.Fprintln(cmd.OutOrStdout(), p)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the new file's path as JSON")
	return cmd
}

// createJSON is create's --json output.
type createJSON struct {
	// File is the path of the new migration file.
	File string `json:"file"`
}

// pullDriftJSON is pull --drift's --json output.
type pullDriftJSON struct {
	// File is the path of the migration file written for the drift,
	// recorded as applied on this database.
	File string `json:"file"`
	// Unsupported lists the differences no operation expresses: they
	// are in the file as comments, to write by hand.
	Unsupported []string `json:"unsupported"`
}

func newValidateCmd(g *globals) *cobra.Command {
	var offline, asJSON bool
	cmd := &cobra.Command{
		Use:   "validate [PATH...]",
		Short: "Check migration files or directories, offline or against the live catalog, changing nothing",
		Long: `validate checks files and directories of migrations and reports every invalid
file (exit 2), naming the file, the operation and the field.

Offline (--offline, or when no database answers): the format, the names, and each
file compiled in order against the schema the files before it build, a directory
starting from an empty schema. With a database: files already applied are skipped
and the pending ones are compiled in order against the live catalog.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				dir, err := g.dirArg(nil)
				if err != nil {
					return err
				}
				args = []string{dir}
			}
			var e *workflow.Engine
			if !offline {
				ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
				var err error
				e, err = g.open(ctx, g.config())
				cancel()
				if err != nil {
					fmt.Fprintf(g.stderr, "online: no database reachable (%v); validating offline\n", err)
					e = nil
				} else {
					defer closeEngine(cmd.Context(), e)
				}
			}
			out, verr := workflow.ValidatePaths(cmd.Context(), e, g.schema, args)
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), out); err != nil {
					return err
				}
			} else if out.Valid {
				n := 0
				for _, r := range out.Results {
					if r != nil {
						n += len(r.Checked)
						for _, w := range r.Warnings {
							fmt.Fprintf(g.stderr, "online: warning: %s\n", w)
						}
					}
				}
				mode := "against the live database"
				if e == nil {
					mode = "offline"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "valid: %d file(s) checked %s.\n", n, mode)
			}
			if verr != nil {
				return usageError{verr}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&offline, "offline", false, "do not connect: check the files against the schema they build from an empty one")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func newBaselineCmd(g *globals) *cobra.Command {
	var upTo string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "baseline [DIR --up-to FILE]",
		Short: "Adopt online on a database another tool built: record the current schema as the start of the history",
		Long: `baseline records the current schema as the starting point of the history. With
DIR --up-to FILE it also marks the files of DIR up to FILE as applied, with their
checksums, without running them. It refuses once online has run migrations.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (upTo == "") != (len(args) == 0) {
				return usageError{errors.New("baseline takes DIR and --up-to FILE together, or neither")}
			}
			var d *workflow.Dir
			if len(args) == 1 {
				var err error
				if d, err = loadDir(args[0]); err != nil {
					return err
				}
			}
			e, err := g.open(cmd.Context(), g.config())
			if err != nil {
				return err
			}
			defer closeEngine(cmd.Context(), e)
			if upTo != "" {
				upTo = filepath.Base(upTo)
			}
			res, err := e.Baseline(cmd.Context(), d, upTo)
			if err != nil {
				return workflowErr(err)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "baseline %s recorded", res.Baseline)
			if len(res.Marked) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "; marked as applied without running them: %s", strings.Join(res.Marked, ", "))
			}
			fmt.Fprintln(cmd.OutOrStdout(), ".")
			return nil
		},
	}
	cmd.Flags().StringVar(&upTo, "up-to", "", "mark the files of DIR up to this one (included) as applied")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what was recorded as JSON")
	return cmd
}

func newPullCmd(g *globals) *cobra.Command {
	var force, asJSON, drift bool
	var driftName string
	cmd := &cobra.Command{
		Use:   "pull [DIR]",
		Short: "Write the applied history as files of DIR (for a new clone, or after migrations ran elsewhere)",
		Long: `pull writes each applied file, as the history stores it, into DIR. A file that is
there with the same content (same checksum) is left alone; one that differs is
not overwritten without --force (exit 2, nothing written). Comments and
formatting are not stored, so a pulled file is the document in plain YAML.

--drift writes what changed outside online since the last migration (status DIR
lists it) as the next migration file of DIR, and records that file as applied on
this database without running it: the folder says what the database is again,
and other databases apply the file as any other. Review the file; differences no
operation expresses are in it as comments.`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := g.dirArg(args)
			if err != nil {
				return err
			}
			if drift {
				return pullDrift(cmd, g, dir, driftName, asJSON)
			}
			e, err := g.open(cmd.Context(), g.config())
			if err != nil {
				return err
			}
			defer closeEngine(cmd.Context(), e)
			files, err := e.Pull(cmd.Context())
			if err != nil {
				return err
			}
			res, err := workflow.WritePulled(dir, files, force)
			if err != nil {
				return workflowErr(err)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			for _, p := range res.Written {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			fmt.Fprintf(g.stderr, "pulled %d file(s), %d already up to date\n", len(res.Written), res.UpToDate)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite files that differ from the applied version")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the files written as JSON")
	cmd.Flags().BoolVar(&drift, "drift", false, "write the changes made outside online as the next migration file, recorded as applied here")
	cmd.Flags().StringVar(&driftName, "name", "drift", "with --drift: the name of the file written")
	return cmd
}

func newRevertCmd(g *globals) *cobra.Command {
	var asJSON bool
	var to string
	var bf backfillFlags
	cmd := &cobra.Command{
		Use:   "revert [--to NAME]",
		Short: "Start the inverse of the last completed migration (then complete or rollback it as any other)",
		Long: `revert starts, as an ordinary migration with both versions live, the inverse of
the last completed migration: renames back, drops what it added, changes types
back with its down as up. It refuses, naming each operation and why, when an
operation cannot be inverted without losing data (a dropped column or table, sql
without down, ...). online plan FILE says the same per operation in advance.

--to NAME undoes the migrations after NAME (a migration or file name), one at a
time and each online: it starts the revert of the last one in effect and says
how many remain; complete it (or roll it back), then run revert --to NAME again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, bar := g.withBackfill(cmd, &bf)
			e, err := g.open(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer closeEngine(cmd.Context(), e)
			var res *phases.Result
			remaining := 0
			if to != "" {
				res, remaining, err = e.RevertTo(cmd.Context(), baseOrEmpty(to))
			} else {
				res, err = e.Revert(cmd.Context())
			}
			bar.finish()
			if err != nil {
				return workflowErr(err)
			}
			if to != "" && !asJSON {
				fmt.Fprintf(g.stderr, "online: %d more revert(s) to reach %s after this one: complete it, then run online revert --to %s again\n", remaining, to, to)
			}
			return printResult(cmd, asJSON, res, fmt.Sprintf("revert %s started: version schema %s is published.\nApplication code of the reverted shape: SET search_path TO %s. Then online complete (or online rollback).",
				res.Migration, res.VersionSchema, res.VersionSchema))
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().StringVar(&to, "to", "", "undo the migrations after this one, one revert at a time")
	bf.add(cmd)
	addDropDependents(cmd, g)
	return cmd
}

// printReversibility adds to `online plan` a line per operation saying
// whether revert can undo it.
func printReversibility(w io.Writer, rs []operations.Reversal) {
	fmt.Fprintf(w, "\n-- == revert (online revert, after complete) ==\n")
	for _, r := range rs {
		if r.Inverse != nil {
			fmt.Fprintf(w, "-- operation %d (%s): revertible\n", r.Op, r.Kind)
		} else {
			fmt.Fprintf(w, "-- operation %d (%s): NOT revertible: %s\n", r.Op, r.Kind, r.Reason)
		}
	}
}

// baseOrEmpty is the file name of a path, "" for "".
func baseOrEmpty(p string) string {
	if p == "" {
		return ""
	}
	return filepath.Base(p)
}

// planInFolder is `online plan DIR`, and `online plan FILE` for a pending
// file of a migrations directory: each pending file planned against the
// schema the ones before it build. done is false when path is a file
// outside a migrations directory (or one that is applied), which plan
// compiles alone against the live catalog.
func planInFolder(cmd *cobra.Command, g *globals, path string, asJSON bool) (done bool, err error) {
	t, err := workflow.PlanTargetOf(path)
	if err != nil {
		return true, workflowErr(err)
	}
	if t.Dir == nil {
		return false, nil
	}
	e, err := g.open(cmd.Context(), g.config())
	if err != nil {
		return true, err
	}
	defer closeEngine(cmd.Context(), e)
	plans, alone, err := e.PlanPath(cmd.Context(), t)
	if err != nil {
		return true, workflowErr(err)
	}
	if alone {
		return false, nil
	}
	dir, upTo := t.Path, t.UpTo
	if asJSON {
		if upTo != "" && len(plans) == 1 {
			return true, writeJSON(cmd.OutOrStdout(), plans[0].Plan)
		}
		return true, writeJSON(cmd.OutOrStdout(), plans)
	}
	w := cmd.OutOrStdout()
	if len(plans) == 0 {
		fmt.Fprintf(w, "nothing to plan: no file of %s is pending.\n", dir)
	}
	for i, p := range plans {
		if upTo == "" {
			if i > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "-- ==== %s (%d of %d pending) ====\n", p.File, i+1, len(plans))
		}
		fmt.Fprint(w, p.Plan.String())
		printReversibility(w, p.Reversals)
	}
	return true, nil
}

func newHistoryCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List every event of the schema's migrations: started, completed, rolled back, reverted, baselines",
		Long: `history lists, oldest first, every start and complete of a migration (a revert
is one, naming what it undoes), every rollback, and baselines, with who ran it
(database role and operating system user), the working time of start and
complete together, and the rows the backfill rewrote. A run that a revert later
undid is marked "undone". It changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := g.open(cmd.Context(), g.config())
			if err != nil {
				return err
			}
			defer closeEngine(cmd.Context(), e)
			evs, err := e.History(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), evs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AT\tEVENT\tMIGRATION\tFILES\tBY\tDURATION\tROWS")
			for _, ev := range evs {
				what := ev.Event
				if ev.Kind == "revert" {
					what = "revert " + ev.Event + " (undoes " + ev.Reverts + ")"
				}
				if ev.Undone {
					what += ", undone later"
				}
				by := ev.AppliedBy
				if ev.OSUser != "" {
					by += " (" + ev.OSUser + ")"
				}
				dur, rows := "-", "-"
				if ev.Event == workflow.EventCompleted {
					dur, rows = ev.Duration.Round(time.Millisecond).String(), fmt.Sprint(ev.RowsBackfilled)
				}
				files := strings.Join(ev.Files, ",")
				if files == "" {
					files = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.At.Local().Format("2006-01-02 15:04:05"), what, ev.Migration, files, by, dur, rows)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the events as JSON")
	return cmd
}

// pullDrift is `online pull --drift DIR`.
func pullDrift(cmd *cobra.Command, g *globals, dir, name string, asJSON bool) error {
	d, err := loadDir(dir)
	if err != nil {
		return err
	}
	// pull reads by default; recording the drift writes to the database.
	g.command = "pull --drift"
	e, err := g.open(cmd.Context(), g.config())
	if err != nil {
		return err
	}
	defer closeEngine(cmd.Context(), e)
	res, err := e.RecordDrift(cmd.Context(), d, name, func(from, to *schema.Schema) ([]byte, []string, error) {
		cmp, err := diff.Compare(from, to, nil)
		if err != nil {
			return nil, nil, err
		}
		content, err := cmp.Render("")
		return content, cmp.Unsupported, err
	})
	if errors.Is(err, workflow.ErrNoDrift) {
		return usageError{err}
	}
	if err != nil {
		return workflowErr(err)
	}
	p := filepath.Join(dir, res.File)
	if err := os.WriteFile(p, res.Content, 0o644); err != nil {
		return fmt.Errorf("write %s (it is recorded as applied: online pull %s writes it again): %w", p, dir, err)
	}
	for _, u := range res.Unsupported {
		fmt.Fprintf(g.stderr, "online: warning: %s: not expressed by an operation, write it by hand: %s\n", p, u)
	}
	if asJSON {
		return writeJSON(cmd.OutOrStdout(), pullDriftJSON{File: p, Unsupported: orEmpty(res.Unsupported)})
	}
	fmt.Fprintln(cmd.OutOrStdout(), p)
	return nil
}
