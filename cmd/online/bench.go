package main

import (
	"github.com/spf13/cobra"

	"github.com/onlinepg/online/bench"
	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/phases"
)

func newBenchCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure what an application sees while online migrates its tables",
		// NoArgs makes an unknown subcommand an error (exit 2) rather
		// than a help text with exit 0.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newBenchLiveCmd(g))
	return cmd
}

func newBenchLiveCmd(g *globals) *cobra.Command {
	var (
		cfg     bench.Config
		compare bool
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "live",
		Short: "Run pgbench's TPC-B traffic through an online migration and report every phase",
		Long: `Live runs pgbench's TPC-B-like workload against a scratch database while a
migration of pgbench's tables runs through start and complete: abalance int to
bigint, a rename, a foreign key, NOT NULL with up, and an index.

The workload runs through the old version (search_path=public) before and
during start, a second one through the new version once it is published,
then the old one stops, complete runs, and the new one goes on alone. For
each phase it reports transactions, failed transactions (expected: none),
throughput, average and p99 latency, and the longest stall (the longest time
in which no transaction finished), then checks the data: every balance is the
sum of its history deltas, and every migrated column holds what the migration
defines. With --compare (the default) it then runs the same workload on a
fresh copy with no migration, and through the blocking
ALTER TABLE pgbench_accounts ALTER COLUMN abalance TYPE bigint.

It works in scratch databases it creates on the server (--database-url,
DATABASE_URL, the PG* variables, or ` + pg.DefaultURL + `)
and drops at the end. Without pgbench on PATH it runs an equivalent workload
written in Go. It exits non-zero when a transaction failed or a check did not
pass during the online migration.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.URL = g.databaseURL
			cfg.LockTimeout = g.lockTimeout
			cfg.LockRetryDeadline = g.lockRetryDeadline
			cfg.NoComparison = !compare
			cfg.Log = g.log
			cfg.Out = cmd.OutOrStdout()
			if asJSON {
				// stdout is for the document alone.
				cfg.Out = cmd.ErrOrStderr()
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			rep, err := bench.Live(cmd.Context(), cfg)
			if rep != nil && len(rep.Phases) > 0 {
				var werr error
				if asJSON {
					werr = writeJSON(cmd.OutOrStdout(), rep)
				} else {
					werr = rep.WriteText(cmd.OutOrStdout())
				}
				if err == nil {
					err = werr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Scale, "scale", bench.DefaultScale, "pgbench scale factor: 100,000 accounts per unit")
	f.IntVar(&cfg.Clients, "clients", bench.DefaultClients, "sessions of each application")
	f.DurationVar(&cfg.Duration, "duration", bench.DefaultDuration, "how long the workload runs in each timed phase (before, both versions, after complete, comparison)")
	f.StringVar(&cfg.Workload, "workload", bench.WorkloadAuto, "auto (pgbench when installed), pgbench, or go")
	f.StringVar(&cfg.Pgbench, "pgbench", "", "the pgbench program (default: pgbench on PATH)")
	f.DurationVar(&cfg.BackfillBatchTime, "backfill-batch-time", 0, "target duration of one backfill batch (default: the engine's, "+phases.DefaultBackfillBatchTime.String()+")")
	f.Float64Var(&cfg.BackfillRate, "backfill-rate", 0, "most backfill rows per second; 0 is unlimited")
	f.Float64Var(&cfg.BackfillYield, "backfill-yield", phases.DefaultBackfillYield, "slow the backfill so the application keeps this fraction of its write rate (0: off)")
	f.IntVar(&cfg.BackfillWorkers, "backfill-workers", 0, "connections walking a table's key ranges at once; 0 lets the engine choose")
	f.BoolVar(&compare, "compare", true, "also run the workload with no migration and through the blocking ALTER TABLE")
	f.BoolVar(&asJSON, "json", false, "write the report as JSON on stdout (the running account goes to stderr)")
	return cmd
}
