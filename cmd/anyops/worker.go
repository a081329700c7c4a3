package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "worker (being built)",
		RunE:  func(*cobra.Command, []string) error { return errors.New("worker: not built yet") },
	}
}
