package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newCloudsimCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cloudsim",
		Short: "cloudsim (being built)",
		RunE:  func(*cobra.Command, []string) error { return errors.New("cloudsim: not built yet") },
	}
}
