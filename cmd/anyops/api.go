package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/worker"
)

func newAPICmd() *cobra.Command {
	var (
		common config.Common
		db     config.DB
		tc     config.Temporal
		ac     config.API
	)
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Serve the HTTP API: inventory reads, operations on Temporal, public status",
		Args:  cobra.NoArgs,
	}
	b := config.NewBinder(cmd.Flags())
	b.BindCommon(&common)
	b.BindDB(&db)
	b.BindTemporal(&tc)
	b.BindAPI(&ac)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := b.Load(); err != nil {
			return err
		}
		logger, err := common.NewLogger(os.Stderr)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.ErrOrStderr(), "anyops api, settings:")
		b.Print(cmd.ErrOrStderr())
		auth, err := api.ParseTokens(ac.Tokens)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		store, err := openInventory(ctx, common, db)
		if err != nil {
			return err
		}
		defer store.Close()
		tcl, err := worker.Dial(ctx, tc, logger)
		if err != nil {
			return err
		}
		defer tcl.Close()
		return api.Run(ctx, api.Config{Addr: ac.Addr, Deps: api.Deps{
			Store: store, Temporal: tcl, Auth: auth, Logger: logger,
			CORSOrigins: api.ParseOrigins(ac.CORSOrigins), ConsolesEnabled: ac.PublicEmbed,
		}})
	}
	return cmd
}

// openInventory opens (and migrates) the inventory database; for SQLite the default file is
// <data dir>/anyops.db.
func openInventory(ctx context.Context, common config.Common, db config.DB) (*inventory.Store, error) {
	dsn := db.DSN
	if db.Driver == inventory.DriverSQLite {
		dsn = common.DefaultPath(db.DSN, "anyops.db")
		if err := os.MkdirAll(filepath.Dir(dsn), 0o755); err != nil {
			return nil, err
		}
	}
	return inventory.Open(ctx, db.Driver, dsn)
}
