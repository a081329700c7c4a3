package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/config"
)

func newWorkerCmd() *cobra.Command {
	var (
		common  config.Common
		db      config.DB
		tc      config.Temporal
		wc      config.Worker
		aws     config.AWS
		signing config.Signing
		certs   config.Certificates
		smtp    config.SMTP
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
	b.BindWorkerMetrics(&wc)
	b.BindAWS(&aws)
	b.BindSigning(&signing)
	b.BindCertificates(&certs)
	b.BindSMTP(&smtp)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := b.Load(); err != nil {
			return err
		}
		logger, err := startupLogger("worker", common, b)
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
		cp.certs, cp.smtp = certs, smtp
		clouds, err := activities.NewClients(ctx, aws)
		if err != nil {
			return err
		}
		if wc.MetricsAddr != "" {
			go func() {
				if err := cp.serveWorkerMetrics(ctx, wc.MetricsAddr); err != nil {
					logger.Error("worker metrics", "err", err)
					stop()
				}
			}()
		}
		return cp.runWorker(ctx, wc, clouds, true)
	}
	return cmd
}
