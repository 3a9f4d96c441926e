package rehearse

// RunWithID runs with a known database name prefix, for tests that look for
// leftovers after a failed or cancelled run.
var RunWithID = run
