package main

import (
	"github.com/spf13/cobra"

	"github.com/onlinepg/online/operations"
)

func newSchemaCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema (draft 2020-12) of the migration file format",
		Long: `Schema prints a JSON Schema of online's migration files, generated from the same
registry of operations the parser reads. The repository commits it as
jsonschema/migration.json, for editors (yaml-language-server: $schema=...) and CI.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := operations.JSONSchema()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
}
