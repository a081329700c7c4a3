// Command anyops is the one binary of the Anyops control plane: api, worker, sandboxd,
// cloudsim, migrate, and dev, which runs all of them together on a laptop.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/anyops/anyops/sandboxd/jail"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	jail.MaybeInit() // when re-executed as a sandbox's init (no anyops-sandbox-init beside us): runs it and exits
	root := &cobra.Command{
		Use:           "anyops",
		Short:         "Operations control plane of a Python hosting platform",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newDevCmd(),
		newAPICmd(),
		newWorkerCmd(),
		newSandboxdCmd(),
		newImageCmd(),
		newCloudsimCmd(),
		newMigrateCmd(),
		newTokenCmd(),
		newPatchCmd(),
		newOpCmd(),
		newReleaseCmd(),
		newIncidentCmd(),
		newDrillCmd(),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "anyops", version) },
		},
	)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "anyops:", err)
		os.Exit(1)
	}
}
