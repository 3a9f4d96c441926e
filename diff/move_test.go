package diff_test

import (
	"context"
	"strings"
	"testing"

	"github.com/onlinepg/online/diff"
	"github.com/onlinepg/online/internal/pgtest"
)

// TestDiffSaysMovesAreNotInferred: a column dropped from one table while
// another gets a column of its name and type is written as the drop and
// the add it is, with a comment on the drop saying that moving the data is
// beyond what diff infers and that, as written, the values are dropped.
func TestDiffSaysMovesAreNotInferred(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	pgtest.Exec(t, pgtest.Connect(t, url), `CREATE TABLE users (id bigint PRIMARY KEY, email text, name text)`)
	want, err := diff.LoadSQL(ctx, url, "desired.sql", `
CREATE TABLE users (id bigint PRIMARY KEY, name int);
CREATE TABLE accounts (id bigint PRIMARY KEY, user_id bigint, email text, name text);`, "public")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := diff.ReadURL(ctx, url, "public")
	if err != nil {
		t.Fatal(err)
	}
	res, err := diff.Compare(cur, want, nil)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := res.Render("")
	s := string(text)
	if !strings.Contains(s, "REVIEW: users.email goes while accounts gets a column of that name. If the data moves, this is beyond what online diff infers") {
		t.Fatalf("the drop of users.email does not say that a move is not inferred:\n%s", s)
	}
	// users.name changes type and stays: no such note.
	if strings.Contains(s, "users.name goes") {
		t.Fatalf("a column that stays got the note:\n%s", s)
	}
}
