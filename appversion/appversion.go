package appversion

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"gopkg.in/yaml.v3"
)

// Version is the schema version an application was built for.
type Version struct {
	// Name is the version: a migration's version_schema, which is its name
	// (the file name without extension) unless the file sets one. Empty
	// means the tables themselves, the version of a schema online never
	// migrated.
	Name string
	// Schema is the migrated schema; default "public".
	Schema string
	// StateSchema is where online keeps its records; default "online".
	// Check reads it, when it may, to say why a version schema is missing.
	StateSchema string
}

// FromFile returns the version a migration file publishes, as online
// names it: the file's version_schema field, else its name field, else
// the file name without extension. When the file cannot be read or parsed
// (a build that embeds only the file name it was made for), it is the file
// name without extension; FromContent reports such errors instead.
func FromFile(file string) Version {
	data, err := os.ReadFile(file)
	if err != nil {
		return Version{Name: stem(file)}
	}
	v, err := FromContent(file, data)
	if err != nil {
		return Version{Name: stem(file)}
	}
	return v
}

// FromContent is FromFile for a file's content already read (an embedded
// migration, say): file is its name, for the fallback and for errors.
func FromContent(file string, data []byte) (Version, error) {
	// JSON is YAML: one decoder reads both formats online accepts.
	var doc struct {
		Name          string `yaml:"name"`
		VersionSchema string `yaml:"version_schema"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Version{}, fmt.Errorf("read migration file %s: %w", file, err)
	}
	switch {
	case strings.TrimSpace(doc.VersionSchema) != "":
		return Version{Name: doc.VersionSchema}, nil
	case strings.TrimSpace(doc.Name) != "":
		return Version{Name: doc.Name}, nil
	}
	return Version{Name: stem(file)}, nil
}

func stem(file string) string {
	base := filepath.Base(file)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

func (v Version) schema() string {
	if v.Schema == "" {
		return "public"
	}
	return v.Schema
}

func (v Version) stateSchema() string {
	if v.StateSchema == "" {
		return "online"
	}
	return v.StateSchema
}

// SchemaName is the name of the version schema: "<schema>_<name>", shortened
// with a hash past PostgreSQL's 63-byte limit exactly as online shortens it
// (operations.VersionSchemaName; a test keeps the two equal).
func (v Version) SchemaName() string {
	if v.Name == "" {
		return v.schema()
	}
	return shortName(v.schema() + "_" + v.Name)
}

// shortName is operations.ShortName, copied so that an application does not
// import the migration engine.
func shortName(name string) string {
	const max = 63
	if len(name) <= max {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "_" + hex.EncodeToString(sum[:])[:10]
	cut := max - len(suffix)
	for cut > 0 && name[cut]&0xC0 == 0x80 {
		cut--
	}
	return name[:cut] + suffix
}

// SearchPath is the value of search_path for this version: the version
// schema as a quoted identifier, so that any name (upper case, spaces,
// quotes) means itself to the server.
func (v Version) SearchPath() string {
	return pgx.Identifier{v.SchemaName()}.Sanitize()
}

// ConfigureConn sets search_path in cfg's startup parameters: every
// connection made from cfg uses the version from its first statement on.
func (v Version) ConfigureConn(cfg *pgx.ConnConfig) {
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["search_path"] = v.SearchPath()
}

// ConfigurePool sets search_path in the startup parameters of every
// connection of the pool.
func (v Version) ConfigurePool(cfg *pgxpool.Config) { v.ConfigureConn(cfg.ConnConfig) }

// Connector returns a database/sql connector (pgx's stdlib driver) whose
// connections use the version: sql.OpenDB(v.Connector(cfg)).
func (v Version) Connector(cfg *pgx.ConnConfig) driver.Connector {
	c := cfg.Copy()
	v.ConfigureConn(c)
	return stdlib.GetConnector(*c)
}

// ForTransactionPooler adapts cfg to a pooler in transaction mode: no
// search_path in the startup packet (pgbouncer refuses startup parameters
// it does not know), and statements sent without server-side prepared
// statements, which would live on a server connection the next transaction
// may not get. Use it with BeginTx / BeginFunc / BeginSQL.
func ForTransactionPooler(cfg *pgx.ConnConfig) {
	delete(cfg.RuntimeParams, "search_path")
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.StatementCacheCapacity = 0
	cfg.DescriptionCacheCapacity = 0
}

// setLocal is how every transaction of a transaction-mode pooler gets its
// version: set_config(..., true) is SET LOCAL, and its value is a bind
// parameter, so no name is ever spliced into SQL.
const setLocal = "SELECT set_config('search_path', $1, true)"

// TxBeginner is what BeginTx needs: *pgx.Conn, *pgxpool.Pool, *pgxpool.Conn.
type TxBeginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// BeginTx begins a transaction on db and sets the version for it alone
// (SET LOCAL search_path): the way to use a version through a pooler in
// transaction mode, where each transaction may run on another server
// connection and startup parameters are lost.
func (v Version) BeginTx(ctx context.Context, db TxBeginner, opts pgx.TxOptions) (pgx.Tx, error) {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, setLocal, v.SearchPath()); err != nil {
		_ = tx.Rollback(ctx)
		return nil, fmt.Errorf("set search_path to version %s: %w", v.SchemaName(), err)
	}
	return tx, nil
}

// BeginFunc runs fn in a transaction that uses the version (see BeginTx),
// committing when fn returns nil and rolling back otherwise, like
// pgx.BeginFunc.
func (v Version) BeginFunc(ctx context.Context, db TxBeginner, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, versioned{v, db}, pgx.TxOptions{}, fn)
}

type versioned struct {
	v  Version
	db TxBeginner
}

func (b versioned) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	return b.v.BeginTx(ctx, b.db, opts)
}

// BeginSQL is BeginTx for database/sql.
func (v Version) BeginSQL(ctx context.Context, db *sql.DB, opts *sql.TxOptions) (*sql.Tx, error) {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, setLocal, v.SearchPath()); err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("set search_path to version %s: %w", v.SchemaName(), err)
	}
	return tx, nil
}

// PgBouncerDatabase returns a line for the [databases] section of
// pgbouncer.ini: an alias whose server connections all use the version,
// set by connect_query when pgbouncer opens them. Applications then pick
// their version by the database name they connect to, with no change to
// their code. connstr holds the other keys (host=... port=... dbname=...).
// Names with a single quote or a line break cannot be written in
// pgbouncer's format and are refused.
func (v Version) PgBouncerDatabase(alias, connstr string) (string, error) {
	sp := v.SearchPath()
	for _, s := range []string{alias, sp} {
		if strings.ContainsAny(s, "'\n\r=") {
			return "", fmt.Errorf("pgbouncer alias for version %s: %q cannot be written in pgbouncer.ini", v.SchemaName(), s)
		}
	}
	if strings.ContainsAny(alias, " \t\"") {
		return "", fmt.Errorf("pgbouncer alias %q: use a plain database name", alias)
	}
	return fmt.Sprintf("%s = %s connect_query='SET search_path TO %s'", alias, connstr, sp), nil
}

// Querier is a connection, pool or transaction of pgx.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ErrMissing is wrapped by the MissingError that Check returns.
var ErrMissing = errors.New("version schema does not exist")

// MissingError says why the version schema an application needs is not
// there, and what to run.
type MissingError struct {
	Schema string // the version schema
	Reason string // what online's records say, and what to do
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("version schema %s does not exist: %s", e.Schema, e.Reason)
}

func (e *MissingError) Unwrap() error { return ErrMissing }

// Check is the start-up check: it returns nil when the version schema
// exists, and a *MissingError naming the migration to run (or saying that
// the version was retired) when it does not. An application calls it once
// before serving, so that a build deployed before its migration fails at
// once instead of on its first query. It reads online's state schema when
// the role may; without that it still reports the missing schema.
func (v Version) Check(ctx context.Context, q Querier) error {
	name := v.SchemaName()
	var ok bool
	if err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", name).Scan(&ok); err != nil {
		return fmt.Errorf("check version schema %s: %w", name, err)
	}
	if ok {
		return nil
	}
	return &MissingError{Schema: name, Reason: v.why(ctx, q, name)}
}

// why reads online's records about the version schema. Any error here (no
// state schema, no privilege) falls back to the plain advice.
func (v Version) why(ctx context.Context, q Querier, name string) string {
	file := v.Name + ".yaml"
	plain := fmt.Sprintf("run its migration first: online start %s (the migration named %q)", file, v.Name)
	if v.Name == "" {
		return fmt.Sprintf("schema %s itself is missing: check the database the application connects to", name)
	}
	var migration, phase, revertedBy string
	var latestDone bool
	// The newest record of the version: a migration run, reverted, and
	// run again has a record per run. A completed revert that names it
	// means the database went back past this version.
	t := pgx.Identifier{v.stateSchema(), "migrations"}.Sanitize()
	err := q.QueryRow(ctx, fmt.Sprintf(`SELECT m.name, m.phase,
  EXISTS (SELECT 1 FROM %s l WHERE l.schema = m.schema AND l.phase = 'complete' AND l.started_at > m.started_at),
  coalesce((SELECT r.name FROM %s r WHERE r.schema = m.schema AND r.kind = 'revert' AND r.phase = 'complete' AND r.reverts = m.name), '')
FROM %s m WHERE m.schema = $1 AND m.version_schema = $2 AND m.kind <> 'revert' ORDER BY m.started_at DESC LIMIT 1`, t, t, t),
		v.schema(), name).Scan(&migration, &phase, &latestDone, &revertedBy)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.Is(err, pgx.ErrNoRows) || errors.As(err, &pgErr) {
			return plain
		}
		return plain
	}
	switch {
	case phase == "complete" && revertedBy != "":
		return fmt.Sprintf("migration %s was reverted (%s): this build is newer than the database; apply it again (online migrate DIR) or deploy the build of the version the database went back to", strings.SplitN(migration, "~", 2)[0], revertedBy)
	case phase == "complete" && latestDone:
		return fmt.Sprintf("migration %s was completed and a later migration's `online complete` retired its version: this build is older than the database; deploy a newer one", migration)
	case phase == "complete":
		return fmt.Sprintf("migration %s is recorded complete but its schema was dropped by hand; run online status", migration)
	case phase == "rolling_back":
		return fmt.Sprintf("migration %s is being rolled back; run online rollback to finish, then online start %s", migration, file)
	default:
		return fmt.Sprintf("migration %s is in phase %s and not published yet: run online start %s again (or online backfill) to finish it", migration, phase, file)
	}
}

// InUse returns the schema a connection resolves unqualified names in first
// (the first schema of its search_path that exists), for logs and health
// checks. It is "" when none of the path exists, as for a version schema
// not published yet.
func InUse(ctx context.Context, q Querier) (string, error) {
	var s *string
	if err := q.QueryRow(ctx, "SELECT (current_schemas(false))[1]").Scan(&s); err != nil {
		return "", fmt.Errorf("read the connection's version: %w", err)
	}
	if s == nil {
		return "", nil
	}
	return *s, nil
}
