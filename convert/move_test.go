package convert

import (
	"strings"
	"testing"
)

// TestMovesAreNotInferred: statements that copy rows from one table into
// another become sql operations that say moving data is beyond what
// convert infers, and name the extension that does it; a plain INSERT is
// left with the usual reason.
func TestMovesAreNotInferred(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		sql  string
		move bool
	}{
		{"INSERT INTO accounts (user_id, email) SELECT id, email FROM users;", true},
		{"UPDATE users SET bio = p.bio FROM profiles p WHERE p.user_id = users.id;", true},
		{"INSERT INTO accounts (user_id, email) VALUES (1, 'a@x');", false},
		{"UPDATE users SET bio = '';", false},
	} {
		outs, err := File("m.sql", []byte(c.sql))
		if err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		var text strings.Builder
		for _, o := range outs {
			text.Write(o.YAML)
		}
		says := strings.Contains(text.String(), "moving data between tables is beyond what convert infers") && strings.Contains(text.String(), `with "from"`)
		if says != c.move {
			t.Errorf("%s: says it moves data: %v, want %v\n%s", c.sql, says, c.move, text.String())
		}
	}
}
