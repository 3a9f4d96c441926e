package phases

// SetInject makes the engine fail a statement of complete ("complete"),
// rollback ("rollback") or of what runs after their commit ("after"):
// f is called before statement i (i == len(statements) for the state
// update at the end of the transaction) and its error, if any, is the
// statement's.
func SetInject(e *Engine, f func(what string, i int, stmt string) error) { e.inject = f }
