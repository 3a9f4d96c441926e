package backfill

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/onlinepg/online/internal/pgtest"
)

func TestZZExperiment(t *testing.T) {
	if os.Getenv("ZZ") == "" {
		t.Skip()
	}
	ctx := context.Background()
	conn := pgtest.Connect(t, pgtest.NewDB(t))
	pgtest.Exec(t, conn, `CREATE TABLE bench (id uuid PRIMARY KEY default gen_random_uuid(), name text, email text, score int) WITH (autovacuum_enabled = off)`,
		`INSERT INTO bench (name, email, score) SELECT 'name ' || g, 'User' || g || '@Example.COM', g % 1000 FROM generate_series(1, 1000000) g`,
		`ALTER TABLE bench ADD COLUMN email_new text`, `VACUUM bench`, `CHECKPOINT`)
	t0 := time.Now()
	pgtest.Exec(t, conn, `UPDATE bench SET email_new = lower(email)`)
	fmt.Println("plain", time.Since(t0))
	pgtest.Exec(t, conn, `ALTER TABLE bench DROP COLUMN email_new`, `ALTER TABLE bench ADD COLUMN email_new text`, `VACUUM FULL bench`, `VACUUM bench`, `CHECKPOINT`)
	t0 = time.Now()
	n := 0
	cp, err := Run(ctx, conn, Task{Schema: "public", Table: "bench", Key: []Column{{"id", "uuid"}}, Set: []Assignment{{"email_new", "lower(email)"}}},
		Options{Progress: func(p Progress) { n++ }})
	d := time.Since(t0)
	fmt.Printf("backfill %v rows=%d batches=%d %.0f rows/s err=%v\n", d.Round(time.Millisecond), cp.RowsDone, n, float64(cp.RowsDone)/d.Seconds(), err)
}
