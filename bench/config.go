package bench

import (
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
)

// Workloads Config.Workload can name.
const (
	WorkloadAuto    = "auto"    // pgbench when installed, else Go
	WorkloadPgbench = "pgbench" // pgbench, or an error when it is missing
	WorkloadGo      = "go"      // the Go equivalent, whatever is installed
)

// Defaults of `online bench live`: 1M accounts, and a full run (with the
// comparison) within about five minutes on a small machine.
const (
	DefaultScale    = 10
	DefaultClients  = 4
	DefaultDuration = 15 * time.Second
)

// MaxClients bounds Config.Clients: two applications plus the engine and
// the checks must stay well under a default max_connections of 100.
const MaxClients = 32

// MaxScale bounds Config.Scale, 100M accounts: beyond it the run is not a
// few minutes' proof any more.
const MaxScale = 1000

// ThroughputTarget is the fraction of its throughput before the migration
// the application should keep during the backfill.
const ThroughputTarget = 0.85

// StallTarget is the longest stretch in which the application may finish no
// transaction while the backfill runs.
const StallTarget = 200 * time.Millisecond

// Config says where the run goes and how big it is.
type Config struct {
	// URL names the server; its database is only used to create (and drop)
	// the scratch databases. "" uses the PG* variables.
	URL string
	// Scale is pgbench's scale factor: 100,000 accounts, 10 tellers and one
	// branch per unit.
	Scale int
	// Clients is the number of sessions of each application.
	Clients int
	// Duration is how long the workload runs in each phase that the run
	// times itself: before the migration, with both versions, after
	// complete, and in the comparison. Start and Complete take what they
	// take.
	Duration time.Duration
	// Workload is WorkloadAuto (""), WorkloadPgbench or WorkloadGo.
	Workload string
	// Pgbench is the pgbench program; "" looks it up on PATH.
	Pgbench string
	// NoComparison skips the runs with no migration and with the blocking
	// ALTER TABLE.
	NoComparison bool
	// The engine's settings (zero: the engine's defaults, as `online start`
	// has them).
	LockTimeout       time.Duration
	LockRetryDeadline time.Duration
	BackfillBatchTime time.Duration
	BackfillRate      float64
	// BackfillWorkers is the engine's --backfill-workers; 0 lets the engine
	// choose, as `online start` does.
	BackfillWorkers int
	// BackfillYield is the engine's --backfill-yield; 0 turns the
	// governor off (the CLI's flag defaults to the engine's default).
	BackfillYield float64
	// TempDir is where pgbench's transaction logs are kept while it runs;
	// "" is the system's temporary directory.
	TempDir string
	// Log gets the engine's log and the run's own debug lines.
	Log zerolog.Logger
	// Out gets a running account of the run; nil discards it.
	Out io.Writer

	// hook, when set, is called as the run passes its milestones, so that
	// tests can interrupt it at a known point rather than after a guessed
	// delay.
	hook func(milestone string)
}

// Validate checks the settings a person chose, before anything is touched.
func (c Config) Validate() error {
	switch {
	case c.Scale < 1 || c.Scale > MaxScale:
		return fmt.Errorf("--scale must be between 1 and %d, got %d", MaxScale, c.Scale)
	case c.Clients < 1 || c.Clients > MaxClients:
		return fmt.Errorf("--clients must be between 1 and %d, got %d", MaxClients, c.Clients)
	case c.Duration <= 0:
		return fmt.Errorf("--duration must be positive, got %s", c.Duration)
	case c.BackfillRate < 0:
		return fmt.Errorf("--backfill-rate must not be negative, got %g", c.BackfillRate)
	case c.BackfillYield < 0 || c.BackfillYield >= 1:
		return fmt.Errorf("--backfill-yield must be 0 (off) or a fraction below 1, got %g", c.BackfillYield)
	case c.BackfillWorkers < 0:
		return fmt.Errorf("--backfill-workers must not be negative, got %d", c.BackfillWorkers)
	case c.BackfillBatchTime < 0:
		return fmt.Errorf("--backfill-batch-time must not be negative, got %s", c.BackfillBatchTime)
	}
	switch c.Workload {
	case "", WorkloadAuto, WorkloadPgbench, WorkloadGo:
	default:
		return fmt.Errorf("--workload must be %s, %s or %s, got %q", WorkloadAuto, WorkloadPgbench, WorkloadGo, c.Workload)
	}
	return nil
}
