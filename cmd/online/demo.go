package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newDemoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run a live rename migration under simulated application traffic",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return errors.New("demo: not built yet")
		},
	}
}
