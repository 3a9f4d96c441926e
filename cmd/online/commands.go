package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/state"
)

func newInitCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the state schema (idempotent; every command does it on first use)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := g.open(cmd.Context(), g.config())
			if err != nil {
				return err
			}
			defer closeEngine(cmd.Context(), e)
			if err := e.Init(cmd.Context()); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), initJSON{StateSchema: g.stateSchema})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "state schema %q is ready\n", g.stateSchema)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the state schema as JSON")
	return cmd
}

type backfillFlags struct {
	batchTime time.Duration
	rate      float64
	workers   int
	maxLag    time.Duration
	yield     float64
	noBar     bool
}

func (b *backfillFlags) add(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&b.batchTime, "backfill-batch-time", envDuration("ONLINE_BACKFILL_BATCH_TIME", phases.DefaultBackfillBatchTime), "target duration of one backfill batch; the batch size adapts to it (env ONLINE_BACKFILL_BATCH_TIME)")
	cmd.Flags().Float64Var(&b.rate, "backfill-rate", 0, "most rows per second the backfill writes (0: unlimited)")
	cmd.Flags().IntVar(&b.workers, "backfill-workers", 0, "connections that walk a table's key ranges at once (0: min(4, this machine's CPUs, rows/250k))")
	cmd.Flags().DurationVar(&b.maxLag, "max-replica-lag", phases.DefaultMaxReplicaLag, "pause the backfill while a streaming standby's replay lag exceeds this (0: do not check)")
	cmd.Flags().Float64Var(&b.yield, "backfill-yield", phases.DefaultBackfillYield, "while other sessions write, slow the backfill so they keep this fraction of their write rate (0: do not slow down)")
	cmd.Flags().BoolVar(&b.noBar, "no-progress", false, "no progress bar, even on a terminal")
	// PreRunE runs after the root's PersistentPreRunE, before anything
	// connects.
	cmd.PreRunE = func(*cobra.Command, []string) error {
		switch {
		case b.workers < 0:
			return usageError{fmt.Errorf("--backfill-workers must be 0 (automatic) or more, got %d", b.workers)}
		case b.maxLag < 0:
			return usageError{fmt.Errorf("--max-replica-lag must be 0 (off) or more, got %s", b.maxLag)}
		case b.yield < 0 || b.yield >= 1:
			return usageError{fmt.Errorf("--backfill-yield must be 0 (off) or a fraction below 1, got %g", b.yield)}
		case b.rate < 0:
			return usageError{fmt.Errorf("--backfill-rate must be 0 (unlimited) or more, got %g", b.rate)}
		}
		return nil
	}
}

func (g *globals) withBackfill(cmd *cobra.Command, b *backfillFlags) (phases.Config, *progress) {
	cfg := g.config()
	cfg.BackfillBatchTime = b.batchTime
	cfg.BackfillRate = b.rate
	cfg.BackfillWorkers = b.workers
	// The flags' 0 is off; the library's zero is its default.
	cfg.MaxReplicaLag = orOff(b.maxLag)
	cfg.BackfillYield = orOff(b.yield)
	p := newProgress(g.stderr, isTerminal(g.stderr) && !b.noBar, g.log)
	cfg.OnProgress = p.update
	return cfg, p
}

func printResult(cmd *cobra.Command, asJSON bool, res *phases.Result, human string) error {
	if asJSON {
		return writeJSON(cmd.OutOrStdout(), res)
	}
	fmt.Fprintln(cmd.OutOrStdout(), human)
	for _, o := range res.DroppedDependents {
		fmt.Fprintf(cmd.OutOrStdout(), "dropped, as --drop-dependents asked: %s\n", o)
	}
	for _, q := range res.Queued {
		fmt.Fprintf(cmd.OutOrStdout(), "left queued for the next online command (transactions used the table past --lock-retry-deadline): %s\n", q)
	}
	return nil
}

func newStartCmd(g *globals) *cobra.Command {
	var complete, asJSON bool
	var bf backfillFlags
	cmd := &cobra.Command{
		Use:   "start FILE",
		Short: "Start a migration: expand, backfill, then publish the new version schema",
		Long: `Start runs the expand phase (additive DDL under lock_timeout), backfills rewritten
columns in the background of live traffic, then publishes the new version schema.
Run it again after a crash or Ctrl-C to resume from the last checkpoint.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := operations.ParseFile(args[0])
			if err != nil {
				return err
			}
			cfg, bar := g.withBackfill(cmd, &bf)
			e, err := g.open(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer closeEngine(cmd.Context(), e)
			res, err := e.Start(cmd.Context(), m)
			bar.finish()
			if err != nil {
				return err
			}
			human := fmt.Sprintf("migration %s started in %s: new version schema %s is published.\nNew application code: SET search_path TO %s. When the old code is gone: online complete.",
				res.Migration, res.Elapsed.Round(time.Millisecond), res.VersionSchema, res.VersionSchema)
			if res.Resumed {
				human = fmt.Sprintf("migration %s resumed and published: version schema %s.", res.Migration, res.VersionSchema)
			}
			if complete {
				cres, err := e.Complete(cmd.Context())
				if err != nil {
					return err
				}
				res = cres
				human = fmt.Sprintf("migration %s started and completed: version schema %s.", res.Migration, res.VersionSchema)
			}
			return printResult(cmd, asJSON, res, human)
		},
	}
	cmd.Flags().BoolVar(&complete, "complete", false, "complete at once after start (for migrations no old code depends on)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	bf.add(cmd)
	addDropDependents(cmd, g)
	return cmd
}

func newBackfillCmd(g *globals) *cobra.Command {
	var asJSON bool
	var bf backfillFlags
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "Resume the migration in progress (after a crash or Ctrl-C) through backfill and publish",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, bar := g.withBackfill(cmd, &bf)
			e, err := g.open(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer closeEngine(cmd.Context(), e)
			res, err := e.Resume(cmd.Context())
			bar.finish()
			if err != nil {
				return err
			}
			return printResult(cmd, asJSON, res, fmt.Sprintf("migration %s is published: version schema %s.", res.Migration, res.VersionSchema))
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	bf.add(cmd)
	return cmd
}

// newResultCmd builds a command that runs one engine call on the migration
// in progress and reports its Result.
func newResultCmd(g *globals, use, short string, call func(*phases.Engine, context.Context) (*phases.Result, error), human func(*phases.Result) string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := g.open(cmd.Context(), g.config())
			if err != nil {
				return err
			}
			defer closeEngine(cmd.Context(), e)
			res, err := call(e.Engine, cmd.Context())
			if err != nil {
				return err
			}
			return printResult(cmd, asJSON, res, human(res))
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func newCompleteCmd(g *globals) *cobra.Command {
	cmd := newResultCmd(g, "complete", "Complete the migration in progress: contract, and drop the previous version schema",
		(*phases.Engine).Complete,
		func(res *phases.Result) string {
			return fmt.Sprintf("migration %s complete in %s; version schema %s stays.", res.Migration, res.Elapsed.Round(time.Millisecond), res.VersionSchema)
		})
	addDropDependents(cmd, g)
	return cmd
}

func newRollbackCmd(g *globals) *cobra.Command {
	var asJSON, force bool
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Undo the migration in progress; the tables end as they were before start",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := g.config()
			cfg.ForceRollback = force
			e, err := g.open(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer closeEngine(cmd.Context(), e)
			res, err := e.Rollback(cmd.Context())
			if err != nil {
				return err
			}
			return printResult(cmd, asJSON, res, fmt.Sprintf("migration %s rolled back in %s.", res.Migration, res.Elapsed.Round(time.Millisecond)))
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().BoolVar(&force, "force", false, "roll back even past data migrations (update_rows) without down that changed rows; the values they set are kept")
	addDropDependents(cmd, g)
	return cmd
}

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [DIR]",
		Short: "Show the current version, the migration in progress and its progress; with DIR, the state of each file",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return dirStatus(cmd, g, args[0], asJSON)
			}
			e, err := g.open(cmd.Context(), g.config())
			if err != nil {
				return err
			}
			defer closeEngine(cmd.Context(), e)
			st, err := e.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			printStatus(cmd.OutOrStdout(), st, time.Now())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newPlanCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan FILE|DIR",
		Short: "Print what start and complete would run, phase by phase, without changing anything",
		Long: `plan prints what start and complete would run for FILE, phase by phase, and
whether revert could undo each operation. For a directory, it plans every pending
file in order, each against the schema the files before it build; for a file of
a migrations directory, the pending files before it are taken into account.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if done, err := planInFolder(cmd, g, args[0], asJSON); done {
				return err
			}
			m, err := operations.ParseFile(args[0])
			if err != nil {
				return err
			}
			e, err := g.open(cmd.Context(), g.config())
			if err != nil {
				return err
			}
			defer closeEngine(cmd.Context(), e)
			p, err := e.Plan(cmd.Context(), m)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), p)
			}
			fmt.Fprint(cmd.OutOrStdout(), p.String())
			rs, err := e.Reversibility(cmd.Context(), m)
			if err != nil {
				return err
			}
			printReversibility(cmd.OutOrStdout(), rs)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return cmd
}

func newLatestCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "latest",
		Short: "Print the schema of the newest version, for an application's search_path",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := g.open(cmd.Context(), g.config())
			if err != nil {
				return err
			}
			defer closeEngine(cmd.Context(), e)
			v, err := e.Latest(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), latestJSON{Schema: g.schema, Latest: v})
			}
			fmt.Fprintln(cmd.OutOrStdout(), v)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the schema and its newest version as JSON")
	return cmd
}

// initJSON is init's --json output.
type initJSON struct {
	// StateSchema is the schema where online keeps its state, now there.
	StateSchema string `json:"state_schema"`
}

// latestJSON is latest's --json output.
type latestJSON struct {
	// Schema is the migrated schema.
	Schema string `json:"schema"`
	// Latest is the schema of its newest version, what an application's
	// search_path names (Schema itself when no version was ever
	// published).
	Latest string `json:"latest"`
}

// printStatus renders status for people: a table of the migration in
// progress and of its backfill, and the command to run next.
func printStatus(out io.Writer, st *phases.Status, now time.Time) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "schema:\t%s\n", st.Schema)
	fmt.Fprintf(w, "latest version:\t%s\n", st.Latest)
	if m := st.InProgress; m != nil {
		running := ""
		if st.Running {
			running = ", an online process is at work on it now"
		}
		fmt.Fprintf(w, "in progress:\t%s\n", m.Name)
		fmt.Fprintf(w, "  phase:\t%s%s\n", m.Phase, running)
		fmt.Fprintf(w, "  version schema:\t%s\n", m.VersionSchema)
		fmt.Fprintf(w, "  started:\t%s (%s ago)\n", m.StartedAt.Format(time.RFC3339), now.Sub(m.StartedAt).Round(time.Second))
	} else {
		fmt.Fprintf(w, "in progress:\tnone\n")
	}
	var done []string
	for _, h := range st.History {
		if h.Phase == "complete" {
			done = append(done, h.Name)
		}
	}
	fmt.Fprintf(w, "completed:\t%d", len(done))
	if len(done) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(done, ", "))
	}
	fmt.Fprintln(w)
	_ = w.Flush()
	if m := st.InProgress; m != nil && len(m.Backfills) > 0 {
		printBackfills(out, m.Backfills, st.Running)
	}
	for _, lw := range st.Waits {
		fmt.Fprintf(out, "\nwaiting: %s\n", lw)
	}
	fmt.Fprintf(out, "\nnext: %s\n", st.Next)
}

func printBackfills(out io.Writer, all []state.Backfill, running bool) {
	bfs := all
	fmt.Fprintln(out)
	if len(bfs) > maxBackfillLines {
		// A partitioned table has one task per leaf: sum up the finished
		// ones, list the others.
		var n int
		var rows int64
		bfs = bfs[:0:0]
		for _, b := range all {
			if b.Done {
				n, rows = n+1, rows+b.RowsDone
			} else {
				bfs = append(bfs, b)
			}
		}
		fmt.Fprintf(out, "backfill: %d tables or partitions done, %d rows\n", n, rows)
		if len(bfs) == 0 {
			return
		}
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "BACKFILL\tROWS\tOF ~\tDONE\tRATE\tETA\tSTATE\tCHECKPOINT")
	var sum state.Backfill
	sum.Done = true
	for _, b := range bfs {
		st := b.State
		if st == "" {
			// A status from an older library: as it used to be told.
			st = "waiting"
			switch {
			case b.Done:
				st = "done"
			case running:
				st = "running"
			case b.RowsDone > 0:
				st = "stopped"
			}
		}
		if b.Parts > 1 {
			st += fmt.Sprintf(" (%d ranges)", b.Parts)
		}
		if b.Duty > 0 && b.Duty < 1 && !b.Done {
			st += fmt.Sprintf(", yielding to the application: %.0f%% duty", b.Duty*100)
		}
		if b.ReplicaLag > 0 && !b.Done {
			st += fmt.Sprintf(", paused: standby %s behind", b.ReplicaLag.Round(100*time.Millisecond))
		}
		pct, rate, eta := backfillFigures(b)
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", b.Table, b.RowsDone, b.RowsTotal, pct, rate, eta, st, b.UpdatedAt.Format("15:04:05"))
		sum.RowsDone += b.RowsDone
		sum.RowsTotal += max(b.RowsTotal, b.RowsDone)
		sum.Rate += b.Rate
		sum.Done = sum.Done && b.Done
	}
	if len(bfs) > 1 {
		pct, rate, eta := backfillFigures(sum)
		fmt.Fprintf(w, "total\t%d\t%d\t%s\t%s\t%s\t\t\n", sum.RowsDone, sum.RowsTotal, pct, rate, eta)
	}
	_ = w.Flush()
}

// backfillFigures renders the share done, the rate and the ETA of a
// backfill; "-" for what is unknown.
func backfillFigures(b state.Backfill) (pct, rate, eta string) {
	pct, rate, eta = "-", "-", "-"
	if b.RowsTotal > 0 {
		pct = fmt.Sprintf("%.1f%%", min(100, 100*float64(b.RowsDone)/float64(b.RowsTotal)))
	}
	if b.Rate > 0 {
		rate = fmt.Sprintf("%.0f rows/s", b.Rate)
		// The total is the planner's estimate: the ETA is one too.
		if left := b.RowsTotal - b.RowsDone; !b.Done && left > 0 {
			eta = "~" + (time.Duration(float64(left)/b.Rate) * time.Second).Round(time.Second).String()
		}
	}
	return pct, rate, eta
}

// maxBackfillLines is how many backfill tasks status lists one per line
// before it sums up the finished ones.
const maxBackfillLines = 8

// orOff is a flag's value for phases.Config, where off is said as
// phases.Off: the flags take 0 for off.
func orOff[T ~int64 | ~float64](v T) T {
	if v <= 0 {
		return phases.Off
	}
	return v
}
