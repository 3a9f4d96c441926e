// Package demo runs `online demo`: a column rename on a live table while two
// simulated applications, one written for the old shape and one for the new,
// read and write it through their own versions of the schema. It is the
// first thing a new user runs, so it sets everything up itself (a scratch
// database, or a throwaway server when none is reachable) and leaves nothing
// behind, even after Ctrl-C or a failure.
//
// The package prints its report to an io.Writer and logs through a
// zerolog.Logger; the command line only wires flags to Config.
package demo
