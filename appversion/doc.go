// Package appversion is for applications, not for migrations: it points an
// application's database connections at the one version schema the
// application was built for, so that old and new code can run side by side
// while `online` has a migration in progress.
//
// A build embeds the name of its version, usually the name of the last
// migration file it ships ("02_rename_email" for 02_rename_email.yaml, or the
// file's version_schema field). [Version] maps it to its schema the way
// online does ("public_02_rename_email", shortened with a hash past 63 bytes)
// and then:
//
//   - [Version.ConfigureConn], [Version.ConfigurePool] and [Version.Connector]
//     put search_path in the startup packet of every connection (pgx, pgxpool,
//     database/sql through pgx's stdlib). It is never SET on a pool: a SET
//     reaches one pooled connection only.
//   - Behind a pooler in transaction mode (pgbouncer's pool_mode =
//     transaction), startup parameters do not reach the server connection
//     that runs a transaction. [Version.BeginTx], [Version.BeginFunc] and
//     [Version.BeginSQL] start each transaction with SET LOCAL search_path,
//     which lasts exactly as long as the transaction, on whichever server
//     connection the pooler lends. [ForTransactionPooler] makes a pgx config
//     fit for such a pooler; [Version.PgBouncerDatabase] writes the other way,
//     a pgbouncer database alias per version with connect_query.
//   - [Version.Check] is the start-up check: it fails fast, naming the
//     migration to run, when the version schema does not exist yet, and says
//     so when a later `online complete` has retired it.
//   - [InUse] reads which schema a connection resolves names in, for logs
//     and health checks.
//
// The package depends on pgx (and yaml.v3, to read a migration file's
// names in FromFile) only: an application does not pull in the
// migration engine.
package appversion
