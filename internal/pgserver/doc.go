// Package pgserver starts a throwaway PostgreSQL server in a temporary
// directory and removes it afterwards, so that "online demo" works on a
// machine where PostgreSQL's server binaries are installed but no server is
// running (or none the user can log in to).
//
// The server is for one process and a few minutes: it listens on 127.0.0.1
// only, trusts every local login as the superuser postgres, and runs with
// fsync off. It is never meant to hold data anyone wants to keep.
//
// It is started with pg_ctl, which detaches the server from this process: if
// the process is killed before Stop, the server and its directory (named
// online-pg-* in the temporary directory) stay behind.
package pgserver
