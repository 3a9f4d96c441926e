package phases

import (
	"time"

	"github.com/onlinepg/online/backfill"
)

// The engine's defaults, in one place: Open applies them to a zero Config,
// and the CLI's flags, the bench and the demo show and pass the same values,
// so what `online --help` says is what the library does.
const (
	// DefaultLockTimeout bounds each DDL statement's wait for a lock.
	// Below deadlock_timeout (1s by default), so our side gives up first.
	DefaultLockTimeout = 500 * time.Millisecond
	// DefaultLockRetryDeadline bounds the retries of one statement, and of one
	// backfill batch.
	DefaultLockRetryDeadline = 2 * time.Minute
	// DefaultLockWait is how long a command waits for the schema's lock
	// while another session holds it.
	DefaultLockWait = 5 * time.Second
	// DefaultBackfillBatchTime is the target duration of one backfill
	// batch. The backfill package owns it: it runs without phases too.
	DefaultBackfillBatchTime = backfill.DefaultBatchTime
	// DefaultMaxReplicaLag is the standby replay lag above which the
	// backfill pauses, when Config.MaxReplicaLag is zero (and the CLI's
	// --max-replica-lag default).
	DefaultMaxReplicaLag = 5 * time.Second
	// DefaultBackfillYield is the share of its transaction rate the
	// application keeps while the backfill runs, when Config.BackfillYield
	// is zero (and the CLI's --backfill-yield default).
	DefaultBackfillYield = 0.8
)

// Off, as Config.BackfillYield or Config.MaxReplicaLag, turns the governor
// or the replica check off; their zero value is the default, not off.
const Off = -1
