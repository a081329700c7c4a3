package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/inventory"
)

// newMigrateCmd applies the inventory's schema migrations. The other commands migrate at
// start too; this one exists to do it ahead of a deploy and to say what it did.
func newMigrateCmd() *cobra.Command {
	var common config.Common
	var dbCfg config.DB
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the inventory's schema migrations and print the versions applied",
		Args:  cobra.NoArgs,
	}
	binder := config.NewBinder(cmd.Flags())
	binder.BindCommon(&common)
	binder.BindDB(&dbCfg)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := binder.Load(); err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		fmt.Fprintln(out, "anyops migrate:")
		binder.Print(out)
		dsn, err := inventory.ResolveDSN(dbCfg.Driver, dbCfg.DSN, common.DataDir)
		if err != nil {
			return err
		}
		store, err := inventory.Connect(cmd.Context(), dbCfg.Driver, dsn)
		if err != nil {
			return err
		}
		defer store.Close()
		applied, err := store.Migrate(cmd.Context())
		if err != nil {
			return err
		}
		versions, err := store.SchemaVersions(cmd.Context())
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintf(out, "%s inventory is current; schema versions %v\n", store.Driver(), versions)
		} else {
			fmt.Fprintf(out, "%s inventory: applied %v; schema versions %v\n", store.Driver(), applied, versions)
		}
		return nil
	}
	return cmd
}
