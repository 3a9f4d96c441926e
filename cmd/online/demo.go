package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/onlinepg/online/internal/demo"
	"github.com/onlinepg/online/internal/pg"
)

func newDemoCmd(g *globals) *cobra.Command {
	var (
		rows     int
		duration time.Duration
		clients  int
		keep     bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a live rename migration under simulated application traffic",
		Long: `Demo renames a column of a live table while two simulated applications use it:
an old one written for the old column name, and a new one for the new name,
each through its own version of the schema (chosen with search_path).

It works in a scratch database it creates on the server (--database-url,
DATABASE_URL, the PG* variables, or ` + pg.DefaultURL + `)
and drops at the end. When no server answers there and PostgreSQL's server
programs are installed, it starts a throwaway server instead, and removes it
at the end. Existing data is never touched.

It reports how long start and complete took, and for each application its
queries, errors (expected: none) and throughput; it exits non-zero when any
query failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := demo.Config{
				Engine:   g.config(),
				Rows:     rows,
				Duration: duration,
				Clients:  clients,
				Keep:     keep,
				Out:      cmd.OutOrStdout(),
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			_, err := demo.Run(cmd.Context(), cfg)
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&rows, "rows", 100000, "rows in the demo table")
	f.DurationVar(&duration, "duration", 3*time.Second, "how long each phase of traffic runs: old app alone, both apps, new app after complete")
	f.IntVar(&clients, "clients", 4, "connections of each simulated application")
	f.BoolVar(&keep, "keep", false, "keep the scratch database afterwards, to look around in it")
	return cmd
}
