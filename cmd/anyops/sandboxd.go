package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newSandboxdCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sandboxd",
		Short: "sandboxd (being built)",
		RunE:  func(*cobra.Command, []string) error { return errors.New("sandboxd: not built yet") },
	}
}
