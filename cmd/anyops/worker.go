package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/worker"
)

func newWorkerCmd() *cobra.Command {
	var (
		common config.Common
		db     config.DB
		tc     config.Temporal
		wc     config.Worker
		aws    config.AWS
	)
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run workflows and activities on Temporal's task queues",
		Args:  cobra.NoArgs,
	}
	b := config.NewBinder(cmd.Flags())
	b.BindCommon(&common)
	b.BindDB(&db)
	b.BindTemporal(&tc)
	b.BindWorker(&wc)
	b.BindAWS(&aws) // for the cloud activities
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := b.Load(); err != nil {
			return err
		}
		logger, err := common.NewLogger(os.Stderr)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.ErrOrStderr(), "anyops worker, settings:")
		b.Print(cmd.ErrOrStderr())
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
		clouds, err := activities.NewClients(ctx, aws)
		if err != nil {
			return err
		}
		return worker.Run(ctx, worker.Config{
			Client:                   tcl,
			Deps:                     worker.Deps{Store: store, AWS: clouds},
			Logger:                   logger,
			DeadlockDetectionTimeout: wc.DeadlockTimeout,
			MaxConcurrentActivities:  wc.MaxConcurrentActivities,
		})
	}
	return cmd
}
