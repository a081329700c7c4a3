package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/config"
)

func newAPICmd() *cobra.Command {
	var (
		common  config.Common
		db      config.DB
		tc      config.Temporal
		ac      config.API
		signing config.Signing
	)
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Serve the HTTP API: inventory reads, operations on Temporal, consoles, public status",
		Args:  cobra.NoArgs,
	}
	b := config.NewBinder(cmd.Flags())
	b.BindCommon(&common)
	b.BindDB(&db)
	b.BindTemporal(&tc)
	b.BindAPI(&ac)
	b.BindSigning(&signing)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := b.Load(); err != nil {
			return err
		}
		logger, err := startupLogger("api", common, b)
		if err != nil {
			return err
		}
		auth, err := api.ParseTokens(ac.Tokens)
		if err != nil {
			return err
		}
		key, err := readSandboxdKey(signing, logger)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		cp, err := openControlPlane(ctx, common, db, tc, key, logger)
		if err != nil {
			return err
		}
		defer cp.Close()
		if cp.retiredKeys, err = readRetiredKeys(signing); err != nil {
			return err
		}
		return cp.runAPI(ctx, ac, auth, nil)
	}
	return cmd
}
