// Package pg holds the small PostgreSQL helpers every other package shares:
// where to connect, how to quote, how to retry a statement that could not get
// its lock in time, and how to show a server error to a person.
//
// It knows nothing of migrations. Keeping these helpers in one place is what
// makes "every identifier is quoted" and "every lock wait is bounded" true by
// construction instead of by review.
package pg
