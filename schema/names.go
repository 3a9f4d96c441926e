package schema

import (
	"context"
	"fmt"
)

// pathNamesSQL lists every name a search_path could resolve to something
// other than a pg_catalog object: functions, operators, types (array types
// and tables' row types left out: a row type is named after its relation,
// which callers check among Relations), collations and text search
// configurations outside pg_catalog. information_schema counts as outside.
const pathNamesSQL = `
SELECT proname::text FROM pg_catalog.pg_proc WHERE pronamespace <> 'pg_catalog'::regnamespace
UNION SELECT oprname::text FROM pg_catalog.pg_operator WHERE oprnamespace <> 'pg_catalog'::regnamespace
UNION SELECT typname::text FROM pg_catalog.pg_type
      WHERE typnamespace <> 'pg_catalog'::regnamespace AND typrelid = 0 AND typelem = 0
UNION SELECT collname::text FROM pg_catalog.pg_collation WHERE collnamespace <> 'pg_catalog'::regnamespace
UNION SELECT cfgname::text FROM pg_catalog.pg_ts_config WHERE cfgnamespace <> 'pg_catalog'::regnamespace`

// ReadPathNames reads the names described at Schema.PathNames. A database
// with an extension such as PostGIS holds a few thousand; an empty one has
// the few dozen of information_schema.
func ReadPathNames(ctx context.Context, q Querier) (map[string]bool, error) {
	rows, err := q.Query(ctx, pathNamesSQL)
	if err != nil {
		return nil, fmt.Errorf("read names outside pg_catalog: %w", err)
	}
	defer rows.Close()
	names := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("read names outside pg_catalog: %w", err)
		}
		names[n] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read names outside pg_catalog: %w", err)
	}
	return names, nil
}
