package phases_test

import (
	"testing"
)

// TestTriggersUnderAnySearchPath writes through sessions whose search_path
// holds neither the table's schema nor the version schema, and through one
// that holds only the version schema. Conversions that use pg_catalog only
// run under the writer's path (their functions carry no SET clause, which
// costs every row); one that calls a function of the table's schema keeps
// its path pinned, so it still finds the function.
func TestTriggersUnderAnySearchPath(t *testing.T) {
	e := newEnv(t,
		`CREATE FUNCTION slugify(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT replace(lower($1), ' ', '-') $$`,
		`CREATE TABLE users (id bigserial PRIMARY KEY, email text, nick text)`,
		`INSERT INTO users (email, nick) VALUES ('Old@Example.COM', 'Old Timer')`)
	e.start("sp", `
operations:
  - alter_column: { table: users, column: email, up: "lower(email)", down: "email" }
  - alter_column: { table: users, column: nick, up: "slugify(nick)", down: "nick" }
`)
	// The up, down and insert functions of nick (whose up calls slugify)
	// are pinned, those of email are not.
	e.expectRows(e.db, []string{"false|false|3", "true|true|3"}, `
		SELECT p.prosrc LIKE '%nick%', p.proconfig IS NOT NULL, count(*)
		FROM pg_proc p WHERE p.pronamespace = 'online'::regnamespace AND p.prorettype = 'trigger'::regtype
		GROUP BY 1, 2 ORDER BY 1`)

	elsewhere := e.version("nowhere")
	e.exec(elsewhere, `INSERT INTO public.users (email, nick) VALUES ('Plain@Example.COM', 'Plain Writer')`)
	e.exec(elsewhere, `UPDATE public.users SET email = 'Changed@Example.COM', nick = 'Changed Nick' WHERE id = 1`)
	newOnly := e.version("public_sp")
	e.exec(newOnly, `INSERT INTO users (email, nick) VALUES ('new@example.com', 'new-nick')`)
	e.exec(newOnly, `UPDATE users SET nick = 'renamed-nick' WHERE email = 'new@example.com'`)

	want := []string{
		"1|changed@example.com|changed-nick",
		"2|plain@example.com|plain-writer",
		"3|new@example.com|renamed-nick",
	}
	e.expectRows(newOnly, want, `SELECT id, email, nick FROM users ORDER BY id`)
	e.expectRows(e.db, []string{
		"1|Changed@Example.COM|Changed Nick",
		"2|Plain@Example.COM|Plain Writer",
		"3|new@example.com|renamed-nick",
	}, `SELECT id, email, nick FROM public.users ORDER BY id`)
	e.complete()
	e.expectRows(e.db, want, `SELECT id, email, nick FROM public.users ORDER BY id`)
}
