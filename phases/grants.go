package phases

import (
	"context"
	"fmt"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/operations"
)

// grants returns GRANT statements that give the version schema and its
// views the privileges the migrated schema and its tables have, so that a
// role that could use a table can use its view in every version.
//
// With invoker views (security_invoker, PostgreSQL 15 and later) every
// query through a view is checked against the table's own privileges and
// row-level security as the querying role, so the views themselves are
// granted to PUBLIC: they add no right, and a grant or revoke made on a
// table after publish takes effect through every version at once. Before
// 15 a view runs with its owner's rights, so the table grants are copied
// as they are at publish time.
func (e *Engine) grants(ctx context.Context, schemaName, vs string, views []operations.View, invoker bool) ([]string, error) {
	grantee := func(oid uint32, name string) string {
		if oid == 0 {
			return "PUBLIC"
		}
		return pg.Ident(name)
	}
	var out []string
	rows, err := e.conn.Query(ctx, `
SELECT a.grantee, coalesce(r.rolname, ''), a.privilege_type
FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
WHERE n.nspname = $1 AND a.privilege_type = 'USAGE'`, schemaName)
	if err != nil {
		return nil, fmt.Errorf("read privileges of schema %s: %w", schemaName, err)
	}
	for rows.Next() {
		var oid uint32
		var role, priv string
		if err := rows.Scan(&oid, &role, &priv); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s", pg.Ident(vs), grantee(oid, role)))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if invoker {
		for _, v := range views {
			out = append(out, fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO PUBLIC", pg.Ident(vs, v.Name)))
		}
		return out, nil
	}
	byTable := map[string][]string{}
	for _, v := range views {
		byTable[v.Table] = append(byTable[v.Table], v.Name)
	}
	rows, err = e.conn.Query(ctx, `
SELECT c.relname, a.grantee, coalesce(r.rolname, ''), a.privilege_type
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.grantee <> c.relowner
  AND a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER')`, schemaName)
	if err != nil {
		return nil, fmt.Errorf("read privileges of tables in %s: %w", schemaName, err)
	}
	defer rows.Close()
	for rows.Next() {
		var table, role, priv string
		var oid uint32
		if err := rows.Scan(&table, &oid, &role, &priv); err != nil {
			return nil, err
		}
		for _, v := range byTable[table] {
			out = append(out, fmt.Sprintf("GRANT %s ON %s TO %s", priv, pg.Ident(vs, v), grantee(oid, role)))
		}
	}
	return out, rows.Err()
}
