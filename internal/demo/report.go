package demo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"

	"github.com/onlinepg/online/internal/pg"
)

// showcaseEmail is written through the new version and read back through
// the old one: the two versions are views of one table, not copies.
const showcaseEmail = "written-through-the-new-version@example.com"

// showcase makes the point of the demo visible: the same rows through both
// versions, and a write through the new version seen by the old one. It
// connects the way the apps do, with search_path in the startup packet.
func (r *run) showcase(ctx context.Context, showcaseID int64) error {
	oldSpec := r.spec("old", r.rep.OldVersion, oldEmailCol)
	newSpec := r.spec("new", r.rep.NewVersion, newEmailCol)
	oldConn, err := pg.Connect(ctx, r.dbURL, appOptions(oldSpec))
	if err != nil {
		return err
	}
	defer pg.Close(ctx, oldConn)
	newConn, err := pg.Connect(ctx, r.dbURL, appOptions(newSpec))
	if err != nil {
		return err
	}
	defer pg.Close(ctx, newConn)

	upd := fmt.Sprintf("UPDATE %s SET %s = $1 WHERE id = $2", pg.Ident(tableName), pg.Ident(newEmailCol))
	if _, err := newConn.Exec(ctx, upd, showcaseEmail, showcaseID); err != nil {
		return fmt.Errorf("write through the new version: %w", pg.WithSQL(err, upd))
	}
	ids := []int64{1, 2, showcaseID}
	if r.cfg.Rows < 2 {
		ids = []int64{1, showcaseID}
	}

	fmt.Fprintf(r.out, "\n          the same rows through each version, while the migration is in progress\n")
	fmt.Fprintf(r.out, "          (row %d was just updated through the new version, as %s):\n", showcaseID, newEmailCol)
	var seen map[int64]string
	for _, v := range []struct {
		label string
		spec  appSpec
		conn  *pgx.Conn
	}{{"old", oldSpec, oldConn}, {"new", newSpec, newConn}} {
		rows, err := readRows(ctx, v.conn, v.spec.emailCol, ids)
		if err != nil {
			return fmt.Errorf("read through the %s version: %w", v.label, err)
		}
		fmt.Fprintf(r.out, "          %s version, search_path=%s:\n", v.label, v.spec.searchPath)
		tw := tabwriter.NewWriter(r.out, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "            id\t%s\tname\tbalance\n", v.spec.emailCol)
		for _, row := range rows {
			fmt.Fprintf(tw, "            %d\t%s\t%s\t%d\n", row.id, row.email, row.name, row.balance)
		}
		tw.Flush()
		if v.label == "old" {
			seen = map[int64]string{}
			for _, row := range rows {
				seen[row.id] = row.email
			}
		}
	}
	if got := seen[showcaseID]; got != showcaseEmail {
		r.rep.Failed = append(r.rep.Failed, fmt.Sprintf("the old version reads %s = %q for row %d after the new version wrote %q", oldEmailCol, got, showcaseID, showcaseEmail))
		fmt.Fprintf(r.out, "          the old version does NOT see the write made through the new one\n\n")
		return nil
	}
	fmt.Fprintf(r.out, "          the old version sees the write made through the new one: one table, two shapes\n\n")
	return nil
}

type row struct {
	id      int64
	email   string
	name    string
	balance int32
}

func readRows(ctx context.Context, conn *pgx.Conn, emailCol string, ids []int64) ([]row, error) {
	q := fmt.Sprintf("SELECT id, %s, coalesce(name, ''), balance FROM %s WHERE id = ANY($1) ORDER BY id",
		pg.Ident(emailCol), pg.Ident(tableName))
	rows, err := conn.Query(ctx, q, ids)
	if err != nil {
		return nil, pg.WithSQL(err, q)
	}
	return pgx.CollectRows(rows, func(rs pgx.CollectableRow) (row, error) {
		var x row
		err := rs.Scan(&x.id, &x.email, &x.name, &x.balance)
		return x, err
	})
}

// check looks at the table after complete: its column is renamed in place,
// and every row either app inserted is there, with no row lost or doubled.
func (r *run) check(ctx context.Context, showcaseID int64) error {
	conn := r.engine.Conn()
	schema := r.cfg.Engine.Schema
	var cols []string
	err := conn.QueryRow(ctx, `SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute
WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, pg.Ident(schema, tableName)).Scan(&cols)
	if err != nil {
		return fmt.Errorf("read the columns of %s: %w", qualified(schema), err)
	}
	if !slices.Contains(cols, newEmailCol) || slices.Contains(cols, oldEmailCol) {
		r.rep.Failed = append(r.rep.Failed, fmt.Sprintf("after complete, %s has columns %s; want %s in place of %s",
			qualified(schema), strings.Join(cols, ", "), newEmailCol, oldEmailCol))
	}

	var count int64
	var email string
	q := fmt.Sprintf("SELECT count(*), coalesce(max(%s) FILTER (WHERE id = $1), '') FROM %s", pg.Ident(newEmailCol), pg.Ident(schema, tableName))
	if err := conn.QueryRow(ctx, q, showcaseID).Scan(&count, &email); err != nil {
		return fmt.Errorf("count the rows: %w", pg.WithSQL(err, q))
	}
	inserted := r.rep.Old.Inserts + r.rep.New.Inserts
	want := int64(r.cfg.Rows) + 1 + inserted
	verdict := "ok"
	if count != want {
		verdict = "MISMATCH"
		r.rep.Failed = append(r.rep.Failed, fmt.Sprintf("%s has %d rows; want %d", qualified(schema), count, want))
	}
	if email != showcaseEmail {
		r.rep.Failed = append(r.rep.Failed, fmt.Sprintf("row %d has %s = %q after complete; want %q", showcaseID, newEmailCol, email, showcaseEmail))
	}
	fmt.Fprintf(r.out, "check     %s now has columns (%s); rows: %d loaded + 1 showcase + %d inserted by the apps = %d, counted %d: %s\n",
		qualified(schema), strings.Join(cols, ", "), r.cfg.Rows, inserted, want, count, verdict)
	return nil
}

// render prints the results table; Run adds the verdict after clean-up, so
// that it is the last line.
func (r *run) render() {
	rep := r.rep
	fmt.Fprintf(r.out, "\nresults\n")
	// Text columns read best aligned left and numbers aligned right;
	// tabwriter does one or the other per table, so numbers are padded here.
	header := []string{"queries", "errors", "queries/s", "max latency"}
	apps := []struct {
		name, version, col string
		s                  Stats
	}{{"old", rep.OldVersion, oldEmailCol, rep.Old}, {"new", rep.NewVersion, newEmailCol, rep.New}}
	nums := make([][]string, len(apps))
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = len(h)
	}
	for i, a := range apps {
		nums[i] = []string{
			fmt.Sprint(a.s.Queries), fmt.Sprint(a.s.Errors), fmt.Sprintf("%.0f", a.s.PerSecond()), round(a.s.MaxLatency),
		}
		for j, n := range nums[i] {
			width[j] = max(width[j], len(n))
		}
	}
	pad := func(cells []string) string {
		out := make([]string, len(cells))
		for j, c := range cells {
			out[j] = strings.Repeat(" ", width[j]-len(c)) + c
		}
		return strings.Join(out, "\t")
	}
	tw := tabwriter.NewWriter(r.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  app\tsearch_path\tcolumn\tran\t%s\n", pad(header))
	for i, a := range apps {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", a.name, a.version, a.col, round(a.s.Elapsed), pad(nums[i]))
	}
	tw.Flush()
	fmt.Fprintf(r.out, "  timings: setup %s, start %s, complete %s\n", round(rep.Setup), round(rep.Start), round(rep.Complete))
	for _, a := range []struct {
		name string
		s    Stats
	}{{"old", rep.Old}, {"new", rep.New}} {
		for _, m := range a.s.ErrorSamples {
			fmt.Fprintf(r.out, "  %s app error: %s\n", a.name, m)
		}
	}
	for _, f := range rep.Failed {
		fmt.Fprintf(r.out, "  check failed: %s\n", f)
	}
	r.rendered = true
}

// verdict is the report's last line.
func (r *run) verdict(cleanupErr error) {
	if !r.rendered {
		return
	}
	rep := r.rep
	fmt.Fprintf(r.out, "  total: %s\n", round(rep.Total))
	if n := rep.Errors(); n > 0 {
		fmt.Fprintf(r.out, "demo FAILED: %d errors (old app %d, new app %d, failed checks %d)\n", n, rep.Old.Errors, rep.New.Errors, len(rep.Failed))
		return
	}
	if cleanupErr != nil {
		fmt.Fprintf(r.out, "demo passed: 0 errors, but cleaning up failed (see below)\n")
		return
	}
	fmt.Fprintf(r.out, "demo passed: 0 errors\n")
}
