package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/config"
)

func newCloudsimCmd() *cobra.Command {
	var (
		common   config.Common
		sim      config.Cloudsim
		scenario string
		region   string
		seed     int
	)
	cmd := &cobra.Command{
		Use:   "cloudsim",
		Short: "Run the simulated fleet: EC2 (Query) and SSM (JSON) endpoints with a simulated clock and faults",
		Args:  cobra.NoArgs,
	}
	b := config.NewBinder(cmd.Flags())
	b.BindCommon(&common)
	b.BindCloudsim(&sim, "")
	b.String(&scenario, "scenario", "ANYOPS_SIM_SCENARIO", "", "scenario file (JSON or YAML list of {at, fault}) to load at start")
	b.String(&region, "region", "ANYOPS_SIM_REGION", "us-east-1", "simulated AWS region")
	b.Int(&seed, "seed", "ANYOPS_SIM_SEED", 1, "seed of resource IDs in a fresh fleet")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := b.Load(); err != nil {
			return err
		}
		b.Print(cmd.ErrOrStderr())
		log, err := common.NewLogger(os.Stderr)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		cfg := simConfig(sim)
		cfg.StateFile, cfg.Region, cfg.Seed, cfg.Logger, cfg.Scenario = sim.State, region, int64(seed), log, scenario
		return cloudsim.Run(ctx, cfg)
	}
	return cmd
}

// simConfig is the cloudsim configuration the settings give: address, speed, SNS, alarms.
func simConfig(c config.Cloudsim) cloudsim.Config {
	return cloudsim.Config{
		Addr: c.Addr, Speed: c.Speed,
		SNS: cloudsim.SNSConfig{Addr: c.SNSAddr, CertFile: c.SNSCert, KeyFile: c.SNSKey, TopicARN: c.SNSTopicARN,
			Endpoint: c.SNSEndpoint, SignatureVersion: c.SNSSignatureVersion, Duplicates: c.SNSDuplicates},
		Alarms: cloudsim.AlarmConfig{Period: c.AlarmPeriod, EvaluationPeriods: c.AlarmEvaluations, DatapointsToAlarm: c.AlarmDatapoints},
	}
}
