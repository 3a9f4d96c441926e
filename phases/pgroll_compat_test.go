package phases_test

import (
	"sort"
	"strings"
	"testing"
)

// TestPgrollCompat runs migration files written as pgroll users write them
// (no nullable means NOT NULL; create_constraint with up and down; index
// fields as a list of {column, ...}) through start and complete on a real
// database, then compares the whole catalog of schema public with what
// pgroll's documentation says the file builds: every column with its type,
// nullability, default and comment; every constraint with its name and
// pg_get_constraintdef; every index with pg_get_indexdef; every enum with
// its labels. The expected values are written by hand from pgroll's
// documented meaning, not read back from online. Nothing online adds on the
// way (hidden columns, NOT NULL proofs, triggers' checks) may be left.

// compatBase is the schema before each case, with rows, so that the
// operations on existing tables run their backfills and validations.
var compatBase = []string{
	`CREATE TABLE teams (id bigint PRIMARY KEY, title text)`,
	`CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, name text, age int)`,
	`INSERT INTO teams VALUES (1, 'red'), (2, 'blue')`,
	`INSERT INTO users VALUES (1, 'Ann@X.io', 'ann', 30), (2, 'bob@x.io', NULL, 40), (3, 'cy@x.io', 'cy', NULL)`,
}

// The base catalog, as the setup above defines it.
var (
	teamsCols  = []string{"teams.id bigint NOT NULL", "teams.title text"}
	usersCols  = []string{"users.id bigint NOT NULL", "users.email text NOT NULL", "users.name text", "users.age integer"}
	teamsCons  = []string{"teams.teams_pkey PRIMARY KEY (id)"}
	usersCons  = []string{"users.users_pkey PRIMARY KEY (id)"}
	teamsIdx   = []string{"CREATE UNIQUE INDEX teams_pkey ON public.teams USING btree (id)"}
	usersIdx   = []string{"CREATE UNIQUE INDEX users_pkey ON public.users USING btree (id)"}
	baseCols   = cat(teamsCols, usersCols)
	baseCons   = cat(teamsCons, usersCons)
	baseIdx    = cat(teamsIdx, usersIdx)
	usersNoAge = []string{"users.id bigint NOT NULL", "users.email text NOT NULL", "users.name text"}
)

func cat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

type compatCase struct {
	name  string
	setup []string
	yaml  string
	// The whole catalog of schema public after complete. nil means the
	// base's.
	cols, cons, idx, enums []string
	// data: queries on the tables after complete and their rows.
	data [][2]string
}

func TestPgrollCompat(t *testing.T) {
	t.Parallel()
	cases := []compatCase{
		{
			name: "create_table with each column option",
			yaml: `
operations:
  - create_table:
      name: items
      comment: things we sell
      columns:
        - { name: id, type: serial, pk: true }
        - { name: sku, type: text }
        - { name: note, type: text, nullable: true }
        - { name: qty, type: int, default: "1" }
        - { name: code, type: varchar(10), unique: true }
        - { name: price, type: "numeric(10,2)", check: { name: items_price_pos, constraint: "price > 0" } }
        - { name: team_id, type: bigint, nullable: true, references: { name: items_team_fk, table: teams, column: id, on_delete: CASCADE } }
        - { name: label, type: text, nullable: true, comment: shown on the shelf }
        - { name: twice, type: int, generated: { expression: "qty * 2" } }
        - { name: serial_no, type: bigint, generated: { identity: { user_specified_values: ALWAYS } } }
`,
			cols: cat([]string{
				"items.id integer NOT NULL DEFAULT nextval('items_id_seq'::regclass)",
				"items.sku text NOT NULL",
				"items.note text",
				"items.qty integer NOT NULL DEFAULT 1",
				"items.code character varying(10) NOT NULL",
				"items.price numeric(10,2) NOT NULL",
				"items.team_id bigint",
				"items.label text COMMENT 'shown on the shelf'",
				"items.twice integer NOT NULL GENERATED (qty * 2)",
				"items.serial_no bigint NOT NULL IDENTITY ALWAYS",
			}, baseCols),
			cons: cat([]string{
				"items.items_code_key UNIQUE (code)",
				"items.items_pkey PRIMARY KEY (id)",
				"items.items_price_pos CHECK ((price > (0)::numeric))",
				"items.items_team_fk FOREIGN KEY (team_id) REFERENCES teams(id) ON DELETE CASCADE",
			}, baseCons),
			idx: cat([]string{
				"CREATE UNIQUE INDEX items_code_key ON public.items USING btree (code)",
				"CREATE UNIQUE INDEX items_pkey ON public.items USING btree (id)",
			}, baseIdx),
			data: [][2]string{{"SELECT obj_description('public.items'::regclass, 'pg_class')", "things we sell"}},
		},
		{
			name:  "create_table with each constraint type",
			setup: []string{"CREATE EXTENSION btree_gist"},
			yaml: `
operations:
  - create_table:
      name: slots
      columns:
        - { name: a, type: int }
        - { name: b, type: int, nullable: true }
        - { name: team_id, type: bigint, nullable: true }
        - { name: during, type: tstzrange, nullable: true }
      constraints:
        - { name: slots_pk, type: primary_key, columns: [a] }
        - { name: slots_ab_key, type: unique, columns: [a, b], nulls_not_distinct: true }
        - { name: slots_b_check, type: check, check: "b > a" }
        - { name: slots_team_fk, type: foreign_key, columns: [team_id], references: { table: teams, columns: [id], on_delete: SET NULL } }
        - { name: slots_no_overlap, type: exclude, exclude: { index_method: gist, elements: "team_id WITH =, during WITH &&" } }
`,
			cols: cat([]string{"slots.a integer NOT NULL", "slots.b integer", "slots.team_id bigint", "slots.during tstzrange"}, baseCols),
			cons: cat([]string{
				"slots.slots_ab_key UNIQUE NULLS NOT DISTINCT (a, b)",
				"slots.slots_b_check CHECK ((b > a))",
				"slots.slots_no_overlap EXCLUDE USING gist (team_id WITH =, during WITH &&)",
				"slots.slots_pk PRIMARY KEY (a)",
				"slots.slots_team_fk FOREIGN KEY (team_id) REFERENCES teams(id) ON DELETE SET NULL",
			}, baseCons),
			idx: cat([]string{
				"CREATE INDEX slots_no_overlap ON public.slots USING gist (team_id, during)",
				"CREATE UNIQUE INDEX slots_ab_key ON public.slots USING btree (a, b) NULLS NOT DISTINCT",
				"CREATE UNIQUE INDEX slots_pk ON public.slots USING btree (a)",
			}, baseIdx),
		},
		{
			name: "add_column without nullable needs up and ends NOT NULL",
			yaml: `
operations:
  - add_column: { table: users, up: "lower(email)", column: { name: handle, type: text } }
  - add_column: { table: users, column: { name: level, type: int, default: "0" } }
  - add_column: { table: users, column: { name: nick, type: text, nullable: true } }
  - add_column: { table: users, up: "upper(name)", column: { name: shout, type: text, nullable: true } }
`,
			cols: cat(teamsCols, usersCols, []string{"users.handle text NOT NULL", "users.level integer NOT NULL DEFAULT 0", "users.nick text", "users.shout text"}),
			data: [][2]string{{"SELECT string_agg(concat_ws(',', handle, level, coalesce(nick, '-'), coalesce(shout, '-')), ';' ORDER BY id) FROM users", "ann@x.io,0,-,ANN;bob@x.io,0,-,-;cy@x.io,0,-,CY"}},
		},
		{
			name: "add_column with unique, check and references",
			yaml: `
operations:
  - add_column: { table: users, column: { name: token, type: text, nullable: true, unique: true } }
  - add_column: { table: users, column: { name: score, type: int, nullable: true, check: { name: users_score_pos, constraint: "score > 0" } } }
  - add_column: { table: users, column: { name: team_id, type: bigint, nullable: true, references: { name: users_team_fk, table: teams, column: id, on_delete: SET NULL } } }
`,
			cols: cat(teamsCols, usersCols, []string{"users.token text", "users.score integer", "users.team_id bigint"}),
			cons: cat(teamsCons, []string{
				"users.users_pkey PRIMARY KEY (id)",
				"users.users_score_pos CHECK ((score > 0))",
				"users.users_team_fk FOREIGN KEY (team_id) REFERENCES teams(id) ON DELETE SET NULL",
				"users.users_token_key UNIQUE (token)",
			}),
			idx: cat(baseIdx, []string{"CREATE UNIQUE INDEX users_token_key ON public.users USING btree (token)"}),
		},
		{
			name: "alter_column type, nullable, default, comment",
			yaml: `
operations:
  - alter_column: { table: users, column: age, type: bigint, up: "age::bigint", down: "age::int" }
  - alter_column: { table: users, column: name, nullable: false, up: "coalesce(name, 'anon')", down: name }
  - alter_column: { table: users, column: email, nullable: true, up: email, down: "coalesce(email, '')" }
  - alter_column: { table: teams, column: title, default: "'untitled'", comment: shown on the badge }
`,
			cols: []string{
				"teams.id bigint NOT NULL", "teams.title text DEFAULT 'untitled'::text COMMENT 'shown on the badge'",
				"users.id bigint NOT NULL", "users.email text", "users.name text NOT NULL", "users.age bigint",
			},
			data: [][2]string{{"SELECT string_agg(concat_ws(',', name, age), ';' ORDER BY id) FROM users", "ann,30;anon,40;cy"}},
		},
		{
			name:  "alter_column default null drops it, comment null drops it",
			setup: []string{"ALTER TABLE users ALTER COLUMN age SET DEFAULT 7", "COMMENT ON COLUMN users.age IS 'years'"},
			yaml: `
operations:
  - alter_column: { table: users, column: age, default: null, comment: null }
`,
		},
		{
			name:  "alter_column unique, check, references, name",
			setup: []string{"ALTER TABLE users ADD COLUMN team_id bigint", "UPDATE users SET team_id = 1"},
			yaml: `
operations:
  - alter_column: { table: users, column: email, unique: { name: users_email_uniq }, up: email, down: email }
  - alter_column: { table: users, column: age, check: { name: users_age_check, constraint: "age >= 0" }, up: "greatest(age, 0)", down: age }
  - alter_column: { table: users, column: team_id, references: { name: users_team_fk, table: teams, column: id }, up: team_id, down: team_id }
  - alter_column: { table: users, column: name, name: full_name }
`,
			cols: cat(teamsCols, []string{"users.id bigint NOT NULL", "users.email text NOT NULL", "users.full_name text", "users.age integer", "users.team_id bigint"}),
			cons: cat(teamsCons, []string{
				"users.users_age_check CHECK ((age >= 0))",
				"users.users_email_uniq UNIQUE (email)",
				"users.users_pkey PRIMARY KEY (id)",
				"users.users_team_fk FOREIGN KEY (team_id) REFERENCES teams(id)",
			}),
			idx: cat(baseIdx, []string{"CREATE UNIQUE INDEX users_email_uniq ON public.users USING btree (email)"}),
		},
		{
			name: "rename_column, drop_column, rename_table",
			yaml: `
operations:
  - rename_column: { table: users, from: name, to: display_name }
  - drop_column: { table: users, column: age }
  - rename_table: { from: teams, to: squads }
`,
			cols: []string{"squads.id bigint NOT NULL", "squads.title text", "users.id bigint NOT NULL", "users.email text NOT NULL", "users.display_name text"},
			cons: []string{"squads.teams_pkey PRIMARY KEY (id)", "users.users_pkey PRIMARY KEY (id)"},
			idx:  []string{"CREATE UNIQUE INDEX teams_pkey ON public.squads USING btree (id)", "CREATE UNIQUE INDEX users_pkey ON public.users USING btree (id)"},
		},
		{
			name: "drop_table",
			yaml: `
operations:
  - drop_table: { name: teams }
`,
			cols: usersCols, cons: usersCons, idx: usersIdx,
		},
		{
			name:  "create_index with pgroll's index fields and each option",
			setup: []string{"ALTER TABLE users ADD COLUMN doc tsvector"},
			yaml: `
operations:
  - create_index:
      table: users
      name: users_email_name_idx
      unique: true
      method: btree
      predicate: "age > 0"
      storage_parameters: fillfactor=70
      columns:
        - { column: email, collate: C, sort: DESC, nulls: LAST }
        - { column: name }
  - create_index: { table: users, name: users_email_pattern_idx, columns: [{ column: email, opclass: { name: text_pattern_ops } }] }
  - create_index: { table: users, name: users_doc_idx, method: gist, columns: [{ column: doc, opclass: { name: tsvector_ops, params: [siglen=100] } }] }
  - create_index: { table: users, name: users_email_hash_idx, method: hash, columns: [email] }
  - create_index: { table: users, name: users_age_name_idx, columns: { age: { sort: DESC }, name: { nulls: FIRST } } }
`,
			cols: cat(baseCols, []string{"users.doc tsvector"}),
			idx: cat(baseIdx, []string{
				"CREATE INDEX users_age_name_idx ON public.users USING btree (age DESC, name NULLS FIRST)",
				"CREATE INDEX users_doc_idx ON public.users USING gist (doc tsvector_ops (siglen='100'))",
				"CREATE INDEX users_email_hash_idx ON public.users USING hash (email)",
				`CREATE INDEX users_email_pattern_idx ON public.users USING btree (email text_pattern_ops)`,
				`CREATE UNIQUE INDEX users_email_name_idx ON public.users USING btree (email COLLATE "C" DESC NULLS LAST, name) WITH (fillfactor='70') WHERE (age > 0)`,
			}),
		},
		{
			name:  "drop_index",
			setup: []string{"CREATE INDEX users_name_idx ON users (name)"},
			yaml: `
operations:
  - drop_index: { name: users_name_idx }
`,
		},
		{
			name: "create_constraint on existing tables",
			setup: []string{
				"CREATE EXTENSION btree_gist",
				"ALTER TABLE users ADD COLUMN team_id bigint", "UPDATE users SET team_id = 2",
				"CREATE TABLE tags (label text NOT NULL)", "INSERT INTO tags VALUES ('a'), ('b')",
			},
			yaml: `
operations:
  - create_constraint: { table: users, name: users_email_name_key, type: unique, columns: [email, name], up: { email: email, name: name }, down: { email: email, name: name } }
  - create_constraint: { table: users, name: users_age_pos, type: check, columns: [age], check: "age > 0", up: { age: "greatest(age, 1)" }, down: { age: age } }
  - create_constraint: { table: users, name: users_team_fk, type: foreign_key, columns: [team_id], references: { table: teams, columns: [id], on_delete: CASCADE }, up: { team_id: team_id }, down: { team_id: team_id } }
  - create_constraint: { table: tags, name: tags_pk, type: primary_key, columns: [label] }
  - create_constraint: { table: users, name: users_one_per_team, type: exclude, exclude: { index_method: gist, elements: "email WITH =, team_id WITH =" } }
`,
			cols: cat([]string{"tags.label text NOT NULL"}, baseCols, []string{"users.team_id bigint"}),
			cons: cat([]string{"tags.tags_pk PRIMARY KEY (label)"}, teamsCons, []string{
				"users.users_age_pos CHECK ((age > 0))",
				"users.users_email_name_key UNIQUE (email, name)",
				"users.users_one_per_team EXCLUDE USING gist (email WITH =, team_id WITH =)",
				"users.users_pkey PRIMARY KEY (id)",
				"users.users_team_fk FOREIGN KEY (team_id) REFERENCES teams(id) ON DELETE CASCADE",
			}),
			idx: cat([]string{"CREATE UNIQUE INDEX tags_pk ON public.tags USING btree (label)"}, baseIdx, []string{
				"CREATE INDEX users_one_per_team ON public.users USING gist (email, team_id)",
				"CREATE UNIQUE INDEX users_email_name_key ON public.users USING btree (email, name)",
			}),
		},
		{
			name: "create_constraint on a table created in the same file",
			yaml: `
operations:
  - create_table:
      name: posts
      columns:
        - { name: id, type: bigint }
        - { name: slug, type: text }
        - { name: team_id, type: bigint, nullable: true }
        - { name: words, type: int, nullable: true }
  - create_constraint: { table: posts, name: posts_pk, type: primary_key, columns: [id], up: { id: id }, down: { id: id } }
  - create_constraint: { table: posts, name: posts_slug_key, type: unique, columns: [slug], up: { slug: slug }, down: { slug: slug } }
  - create_constraint: { table: posts, name: posts_words_check, type: check, columns: [words], check: "words >= 0", up: { words: words }, down: { words: words } }
  - create_constraint: { table: posts, name: posts_team_fk, type: foreign_key, columns: [team_id], references: { table: teams, columns: [id] }, up: { team_id: team_id }, down: { team_id: team_id } }
  - create_constraint: { table: posts, name: posts_slug_excl, type: exclude, exclude: { index_method: hash, elements: "slug WITH =" } }
`,
			cols: cat([]string{"posts.id bigint NOT NULL", "posts.slug text NOT NULL", "posts.team_id bigint", "posts.words integer"}, baseCols),
			cons: cat([]string{
				"posts.posts_pk PRIMARY KEY (id)",
				"posts.posts_slug_excl EXCLUDE USING hash (slug WITH =)",
				"posts.posts_slug_key UNIQUE (slug)",
				"posts.posts_team_fk FOREIGN KEY (team_id) REFERENCES teams(id)",
				"posts.posts_words_check CHECK ((words >= 0))",
			}, baseCons),
			idx: cat([]string{
				"CREATE INDEX posts_slug_excl ON public.posts USING hash (slug)",
				"CREATE UNIQUE INDEX posts_pk ON public.posts USING btree (id)",
				"CREATE UNIQUE INDEX posts_slug_key ON public.posts USING btree (slug)",
			}, baseIdx),
		},
		{
			name: "drop_constraint, drop_multicolumn_constraint, rename_constraint",
			setup: []string{
				"ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age > 0)",
				"ALTER TABLE users ADD CONSTRAINT users_email_name_key UNIQUE (email, name)",
				"ALTER TABLE teams ADD CONSTRAINT teams_title_check CHECK (title <> '')",
			},
			yaml: `
operations:
  - drop_constraint: { table: users, name: users_age_check, up: age, down: age }
  - drop_multicolumn_constraint: { table: users, name: users_email_name_key, up: { email: email, name: name }, down: { email: email, name: name } }
  - rename_constraint: { table: teams, from: teams_title_check, to: teams_title_not_empty }
`,
			cons: cat([]string{"teams.teams_pkey PRIMARY KEY (id)", "teams.teams_title_not_empty CHECK ((title <> ''::text))"}, usersCons),
		},
		{
			name: "set_replica_identity",
			yaml: `
operations:
  - set_replica_identity: { table: users, identity: { type: full } }
`,
			data: [][2]string{{"SELECT relreplident::text FROM pg_class WHERE oid = 'public.users'::regclass", "f"}},
		},
		{
			name: "create_enum and a column of it",
			yaml: `
operations:
  - create_enum: { name: mood, values: [sad, ok, happy] }
  - add_column: { table: users, column: { name: mood, type: mood, default: "'ok'" } }
`,
			cols:  cat(baseCols, []string{"users.mood mood NOT NULL DEFAULT 'ok'::mood"}),
			enums: []string{"mood: sad, ok, happy"},
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, append(append([]string{}, compatBase...), tc.setup...)...)
			e.start("compat", tc.yaml)
			e.complete()
			or := func(w, base []string) []string {
				if w == nil {
					return base
				}
				return w
			}
			e.compareCatalog("columns", e.catalogColumns(), or(tc.cols, baseCols))
			e.compareCatalog("constraints", e.catalogConstraints(), or(tc.cons, baseCons))
			e.compareCatalog("indexes", e.catalogIndexes(), or(tc.idx, baseIdx))
			e.compareCatalog("enums", e.catalogEnums(), tc.enums)
			for _, d := range tc.data {
				e.expectRows(e.db, []string{d[1]}, d[0])
			}
		})
	}
}

// compareCatalog compares two lists as sets, each sorted, and names what
// is missing and what is extra.
func (e *env) compareCatalog(what string, got, want []string) {
	e.t.Helper()
	g, w := append([]string{}, got...), append([]string{}, want...)
	sort.Strings(g)
	sort.Strings(w)
	if strings.Join(g, "\n") == strings.Join(w, "\n") {
		return
	}
	have := map[string]bool{}
	for _, s := range g {
		have[s] = true
	}
	need := map[string]bool{}
	for _, s := range w {
		need[s] = true
	}
	var missing, extra []string
	for _, s := range w {
		if !have[s] {
			missing = append(missing, s)
		}
	}
	for _, s := range g {
		if !need[s] {
			extra = append(extra, s)
		}
	}
	e.t.Errorf("%s differ from pgroll's meaning\n missing: %q\n   extra: %q", what, missing, extra)
}

// catalogColumns lists every column of every table of schema public:
// "table.column type[ NOT NULL][ DEFAULT expr | GENERATED expr][ IDENTITY
// ALWAYS|BY DEFAULT][ COMMENT 'text']".
func (e *env) catalogColumns() []string {
	e.t.Helper()
	return e.rows(e.db, `
SELECT c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
       || CASE WHEN a.attgenerated = 's' THEN ' GENERATED ' || pg_get_expr(d.adbin, d.adrelid)
               WHEN d.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid) ELSE '' END
       || CASE a.attidentity WHEN 'a' THEN ' IDENTITY ALWAYS' WHEN 'd' THEN ' IDENTITY BY DEFAULT' ELSE '' END
       || coalesce(' COMMENT ' || quote_literal(col_description(c.oid, a.attnum)), '')
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum`)
}

// catalogConstraints lists "table.name definition" for every constraint of
// schema public but NOT NULL (a constraint row on PostgreSQL 18 only).
func (e *env) catalogConstraints() []string {
	e.t.Helper()
	return e.rows(e.db, `
SELECT c.relname || '.' || k.conname || ' ' || pg_get_constraintdef(k.oid)
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND k.contype <> 'n'
ORDER BY 1`)
}

// catalogIndexes lists pg_get_indexdef of every index of schema public.
func (e *env) catalogIndexes() []string {
	e.t.Helper()
	return e.rows(e.db, `
SELECT pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public'
ORDER BY 1`)
}

// catalogEnums lists "type: label, label" for every enum of schema public.
func (e *env) catalogEnums() []string {
	e.t.Helper()
	rows := e.rows(e.db, `
SELECT t.typname || ': ' || string_agg(l.enumlabel, ', ' ORDER BY l.enumsortorder)
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
JOIN pg_enum l ON l.enumtypid = t.oid
WHERE n.nspname = 'public'
GROUP BY t.typname
ORDER BY 1`)
	if len(rows) == 0 {
		return nil
	}
	return rows
}
