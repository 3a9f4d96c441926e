package phases

// Field keys and event names of the engine's log lines, in one place so
// that JSON logs stay stable for machines reading them.
const (
	keyEvent     = "event"
	keyMigration = "migration"
	keyPhase     = "phase"
	keyStep      = "step"
	keySQL       = "sql"
	keyAttempt   = "attempt"
	keyWait      = "wait"
	keyVersion   = "version_schema"
	keyTable     = "table"
	keyHolder    = "holder"
	keyBlockers  = "blockers"

	evPhaseStarted    = "phase_started"
	evPhaseFinished   = "phase_finished"
	evStep            = "step"
	evLockRetry       = "lock_retry"
	evPublished       = "version_published"
	evRolledBack      = "rolled_back"
	evCompleted       = "completed"
	evBackfillResume  = "backfill_resumed"
	evBackfillSkipped = "backfill_skipped"
	evLockWait        = "lock_wait"
	evLockTaken       = "lock_taken"
	evBlocked         = "blocked"
	evReplicaPaused   = "backfill_replica_paused"
	evReplicaResumed  = "backfill_replica_resumed"
)
