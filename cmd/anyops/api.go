package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newAPICmd() *cobra.Command {
	return &cobra.Command{
		Use:   "api",
		Short: "api (being built)",
		RunE:  func(*cobra.Command, []string) error { return errors.New("api: not built yet") },
	}
}
