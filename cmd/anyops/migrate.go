package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newMigrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "migrate (being built)",
		RunE:  func(*cobra.Command, []string) error { return errors.New("migrate: not built yet") },
	}
}
