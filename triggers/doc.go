// Package triggers generates the SQL of the sync triggers that keep an old and
// a new physical column of a table equal in both directions while a migration
// is in progress (between expand and contract). It is pure SQL generation: it
// takes plain data, talks to no server, and imports nothing of this module but
// internal/pg (for quoting).
//
// # What a Rewrite means
//
// A Rewrite pairs the physical column the old version of the schema reads and
// writes (OldColumn) with the one the new version reads and writes
// (NewColumn). Up computes NewColumn for a row written by the old version;
// Down computes OldColumn for a row written by the new version. OldColumn is
// "" for add_column (the old version has no such column) and NewColumn is ""
// for drop_column.
//
// # How the direction of a write is told
//
// Never from search_path or any other session setting of the application: a
// connection pool, a function with its own search_path or a tool that sets
// nothing would all defeat that. The direction is told from which physical
// columns the write touched, because each version can only name its own
// columns (the other version's column is hidden from its views):
//
//   - Up, when NewColumn != "" and Up != nil:
//     BEFORE INSERT WHEN (NEW.new IS NULL) sets NEW.new := up. An old-version
//     insert cannot name the hidden new column, so it arrives NULL; the table
//     must give the new column no default (a default for the new version
//     belongs on its view).
//     BEFORE UPDATE OF <OldColumn, UpWatch..., Key...> sets NEW.new := up when
//     the write left the new column as it was, the backfill setting is not
//     'on', and either an input (OldColumn or an UpWatch column) really
//     changed or the new column is still NULL. Key columns are listed so that
//     a primary-key change of a row the backfill has not reached yet (it walks
//     the key) is still converted. The trigger is skipped when its column list
//     would be empty.
//   - Down, when OldColumn != "" and Down != nil:
//     with a NewColumn, BEFORE INSERT WHEN (NEW.new IS NOT NULL) and
//     BEFORE UPDATE OF <NewColumn, DownWatch...> when the write left the old
//     column as it was, the backfill setting is not 'on' and the new column or
//     a DownWatch column really changed, set NEW.old := down.
//     Without a NewColumn (drop_column), only BEFORE INSERT WHEN
//     (NEW.old IS NULL) sets NEW.old := down; DownWatch is then unused, since
//     a write of a column both versions share cannot be attributed to either.
//
// "Really changed" and "left as it was" compare binary images
// (pg_catalog.record_image_eq over ROW(...)), NULL equal to NULL. Unlike
// IS [NOT] DISTINCT FROM this works for types without an equality operator
// (json, xml, point) and does not call different values equal (box, citext).
// The function form is used rather than the *= operator because
// pg_get_triggerdef prints ROW(a) *= ROW(b) without the cast that keeps the
// parser from expanding it column by column, and pg_dump output must restore.
//
// Requiring a real change is stricter than UPDATE OF alone: an ORM that writes
// every column of its version on each save (Django, many hand-written DAOs)
// would otherwise recompute the other version's column on every save and so
// overwrite what the other version wrote whenever the conversion does not
// round-trip (lower(email), or an add_column whose value the new version
// chose). Likewise a key change recomputes only rows whose new column is still
// NULL: the rows the backfill has not reached, and rows whose converted value
// is NULL, for which recomputing changes nothing.
//
// When a rewrite converts both ways, its two INSERT triggers are one:
// BEFORE INSERT without WHEN, running _online_<ID>_ins, which applies up when
// NEW.new IS NULL and down otherwise, the same test the two WHEN clauses
// make. PostgreSQL parses and plans a trigger's WHEN clause afresh for every
// statement and dispatches each trigger separately, so on single-row INSERTs
// two conditional triggers cost about twice what one unconditional trigger
// does. A rewrite with one direction keeps its WHEN: the writes of the
// other version then skip the function call altogether.
//
// Down triggers fire before up triggers (trigger names sort that way, and
// PostgreSQL fires triggers of one event in name order). A BEFORE trigger's
// WHEN sees the row as changed by the triggers before it, so on a new-version
// insert the down trigger fills the old column and the up trigger, seeing the
// new column set, stays quiet; the reverse order would convert the value
// there and back.
//
// # The backfill
//
// The backfill sets BackfillSetting to 'on' transaction-locally
// (set_config('online.backfill', 'on', true)) in each of its batch
// transactions and writes NewColumn = BackfillExpr(up). UPDATE triggers do not
// fire while it is 'on', so the backfill never runs the reverse conversion.
// BackfillExpr computes the same value as the trigger function from the
// physical columns of the row.
//
// # Cost on the application's writes
//
// An UPDATE whose SET list names none of a trigger's columns does not fire
// that trigger at all: PostgreSQL checks the UPDATE OF list before it even
// evaluates WHEN. The WHEN clauses keep the function from being called when
// there is nothing to do, and the function bodies do no catalog lookups.
//
// Two costs remain that no column list can remove. While any BEFORE UPDATE
// row trigger exists on a table, PostgreSQL locks every row an UPDATE
// touches before it looks at the triggers' column lists (ExecBRUpdateTriggers
// fetches the old row with GetTupleForTrigger), so each updated row costs
// one more WAL record (about 54 bytes; +15% WAL for a narrow table). And COPY
// into a table with BEFORE INSERT row triggers inserts row by row instead of
// in batches.
//
// # Functions and names
//
// Each rewrite gets up to three plpgsql functions in Table.FuncSchema, named
// _online_<ID>_up, _online_<ID>_down and _online_<ID>_ins, and up to three
// triggers: _online_<ID>_1_down_upd, _online_<ID>_2_up_upd, and for INSERT
// either _online_<ID>_0_ins (both ways) or _online_<ID>_1_down_ins and
// _online_<ID>_2_up_ins, whichever directions it has. Create uses plain CREATE FUNCTION
// and CREATE TRIGGER, so it fails if they exist already: the names come from the ID
// alone, so IDs must be unique within a FuncSchema, and re-installing means
// Drop first. A function declares every input as a variable
// (#variable_conflict use_variable, so a variable wins over a same-named
// column of a subquery), evaluates the steps in nested blocks (so a later
// step can re-bind a name with another type), assigns the last result to the
// target column and returns the row. Functions run with
// SET search_path = <table schema>, pg_temp, so an expression written against
// the table's schema resolves the same whatever the application's search_path,
// unless Table.CallerPath says the expressions use pg_catalog objects only:
// then the clause is left out, because PostgreSQL saves, sets and restores a
// function's search_path on every call (about a microsecond per row, a few
// percent of an application's small transactions), and pg_catalog, searched
// first, resolves those names the same under any path.
//
// Create also creates and at once drops a throwaway SQL function
// _online_<ID>_check whose body is UPDATE ... SET target = BackfillExpr(...)
// WHERE false. PostgreSQL parses and analyses a SQL function body (under the
// function's search_path) when it is created, while plpgsql only parses its
// expressions on first call, so this makes a misspelt column or function, or
// a result of the wrong type, fail Create instead of the application's first
// write after the migration starts.
//
// # What the caller must do
//
//   - Add NewColumn without a default, in the transaction that runs Create's
//     statements and before them (the triggers and the check name it). A
//     default for the new version belongs on its view.
//   - Backfill with BackfillSetting 'on' and only rows whose NewColumn IS
//     NULL: a row with a value was written (or converted) since Create, and
//     recomputing it would overwrite what the new version wrote whenever the
//     conversion does not round-trip. Run it with search_path set to the
//     table's schema, as the functions are, so both resolve names alike.
//   - Drop before dropping either column (the triggers depend on them);
//     DROP TRIGGER takes an ACCESS EXCLUSIVE lock, so bound it with
//     lock_timeout.
//   - Give each rewrite an ID unique in its FuncSchema.
//
// Limits of telling the direction from the columns, which the caller should
// know when it plans a migration:
//
//   - A new-version insert that leaves the new column NULL looks like an
//     old-version insert: the up trigger fills it from the old column, which
//     then holds that column's default (or NULL).
//   - The old column's default applies to new-version inserts. For a
//     drop_column down (WHEN old IS NULL) a default on the old column keeps
//     the trigger from ever firing: drop it, or move it to the old view.
//   - A write of a column both versions share (an UpWatch column other than
//     OldColumn) recomputes the new column whichever version wrote it.
//   - The triggers of several rewrites of one table fire in order of ID
//     (down before up holds within one rewrite): a conversion should not
//     read another rewrite's target column.
//   - In the trigger a variable wins over a same-named column of a subquery
//     in an expression; in BackfillExpr the subquery's column wins. Qualify
//     columns inside subqueries.
//   - The check at Create catches what parse analysis catches; an error that
//     depends on a value (a failing cast) still surfaces in the write that
//     meets it.
//
// Every identifier is quoted with pg.Ident; types (Var.Type, Step.Type) are
// format_type text and used verbatim; expressions are used verbatim, wrapped
// in parentheses (with a line break before the closing one when they contain
// "--", so a trailing comment cannot swallow it).
package triggers
