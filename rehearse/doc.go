// Package rehearse runs migrations on a copy of a database before they meet
// production, and reports whether they would succeed and what they would
// cost.
//
// The live database is only read: one connection with
// default_transaction_read_only and a short lock_timeout opens a REPEATABLE
// READ snapshot, exports it, and pg_dump (given that snapshot and a lock wait
// timeout) writes the schema's DDL while the connection copies each table's
// rows (all, or a sample) with COPY. Both take ACCESS SHARE locks only, which
// conflict with nothing but ACCESS EXCLUSIVE; neither waits longer than the
// lock timeout for one. The copy is made once into a base database of the
// target server (the live server, or a staging server), and every rehearsal
// starts from a fresh database made from it with CREATE DATABASE ... TEMPLATE,
// so the live database is read once.
//
// Each rehearsal runs start, writes through the old and the new version, then
// complete; a second one runs start, writes, then rollback. Meanwhile a probe
// session reads and takes write locks on every table of the copy, as an
// application would, and records its longest wait; a monitor samples the
// locks online's sessions hold. Phase durations are also scaled linearly to
// the live table sizes (pg_class.reltuples over rows copied): a rough guide,
// since index builds and validation do not scale linearly.
//
// Every database the package creates is named online_rehearse_<id>_* and is
// dropped at the end, after a failure or a cancel too.
package rehearse
