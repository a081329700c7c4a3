package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/apiclient"
	"github.com/anyops/anyops/workflows"
)

// newReleaseCmd is `anyops release`: releases and zone moves through the API (the release
// operation kind; approve, abort and override are `anyops op`'s, on release/<cluster>).
func newReleaseCmd() *cobra.Command {
	cmd, connect := newClientGroup("release", "Releases and zone moves through the API: plan (a dry run), start")
	cmd.AddCommand(newReleasePlanCmd(connect), newReleaseStartCmd(connect))
	return cmd
}

// releaseFlags are the release input's flags, shared by plan and start.
type releaseFlags struct {
	in    workflows.ReleaseInput
	types []string // role=instance-type
}

func (f *releaseFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.in.Version, "version", "", "the release version (required); the new cluster is <cluster>-<version> unless --new-cluster")
	cmd.Flags().StringVar(&f.in.NewCluster, "new-cluster", "", "the new cluster's name")
	cmd.Flags().StringVar(&f.in.TargetZone, "target-zone", "", "the zone the new cluster runs in (default: the live cluster's; another one is a zone move)")
	cmd.Flags().StringSliceVar(&f.types, "instance-type", nil, "role=type for the new cluster's servers (repeatable), e.g. file=m6i.2xlarge")
	cmd.Flags().DurationVar(&f.in.Policy.Retention, "retention", 0, "how long the old cluster stays a standby (default 7 days)")
	cmd.Flags().BoolVar(&f.in.Policy.NoApproval, "no-approval", false, "cut over without waiting for the approval of the plan")
}

func (f *releaseFlags) input(cluster string, dryRun bool) ([]byte, error) {
	in := f.in
	in.Cluster, in.DryRun = cluster, dryRun
	if in.Version == "" {
		return nil, fmt.Errorf("--version is required")
	}
	for _, t := range f.types {
		role, typ, ok := strings.Cut(t, "=")
		if !ok {
			return nil, fmt.Errorf("--instance-type %q: want role=type", t)
		}
		if in.InstanceTypes == nil {
			in.InstanceTypes = map[anyops.Role]string{}
		}
		in.InstanceTypes[anyops.Role(role)] = typ
	}
	return json.Marshal(in)
}

// start starts the release operation (a dry run for a plan) with the flags' input.
func (f *releaseFlags) start(cmd *cobra.Command, connect func() (*apiclient.Client, error), cluster string, dryRun bool) (*apiclient.Client, api.StartedOperation, error) {
	body, err := f.input(cluster, dryRun)
	if err != nil {
		return nil, api.StartedOperation{}, err
	}
	c, err := connect()
	if err != nil {
		return nil, api.StartedOperation{}, err
	}
	started, err := c.StartOperation(cmd.Context(), workflows.KindRelease, body)
	return c, started, err
}

func newReleasePlanCmd(connect func() (*apiclient.Client, error)) *cobra.Command {
	var (
		flags  releaseFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "plan CLUSTER",
		Short: "Plan a release of a cluster without changing anything (a dry run): every volume, its way, the blockers, the predicted downtime, the plan's hash",
		Args:  requireArg("cluster (e.g. live)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, started, err := flags.start(cmd, connect, args[0], true)
			if err != nil {
				return err
			}
			ctx, stop := interruptible(cmd)
			defer stop()
			// A dry run is short: its progress is not shown, only its plan.
			op, ended, err := follow(ctx, io.Discard, false, 500*time.Millisecond, getOperation(c, started.ID))
			switch {
			case err != nil:
				return err
			case !ended:
				return ctx.Err()
			case op.State != api.StateCompleted:
				return fmt.Errorf("the plan %s %s: %s", started.ID, op.State, oneLine(op.Error, 300))
			}
			var res workflows.ReleaseResult
			if err := json.Unmarshal(op.Result, &res); err != nil {
				return fmt.Errorf("the plan's result: %w", err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res.Plan)
			}
			printPlan(cmd.OutOrStdout(), res.Plan)
			if len(res.Plan.Blockers) > 0 {
				return fmt.Errorf("%d blockers", len(res.Plan.Blockers))
			}
			return nil
		},
	}
	flags.add(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return cmd
}

func newReleaseStartCmd(connect func() (*apiclient.Client, error)) *cobra.Command {
	var (
		flags releaseFlags
		watch bool
	)
	cmd := &cobra.Command{
		Use:   "start CLUSTER",
		Short: "Start a release of a cluster (release/<cluster>); it plans, pre-stages and waits for `anyops op approve release/<cluster> --plan-hash H`",
		Args:  requireArg("cluster (e.g. live)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, started, err := flags.start(cmd, connect, args[0], false)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			verb := "started"
			if started.Joined {
				verb = "joined"
			}
			fmt.Fprintf(out, "%s %s (run %s); its plan: anyops op show %s\n", verb, started.ID, started.RunID, started.ID)
			if !watch {
				return nil
			}
			ctx, stop := interruptible(cmd)
			defer stop()
			return watchOperation(ctx, c, started.ID, out, isTerminal(out), time.Second)
		},
	}
	flags.add(cmd)
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "then follow it until it ends")
	return cmd
}

// printPlan writes a release plan for a terminal.
func printPlan(w io.Writer, p workflows.ReleasePlan) {
	move := ""
	if p.ZoneMove {
		move = " (a zone move)"
	}
	fmt.Fprintf(w, "release %s of %s as %s: %s -> %s%s\n", p.Version, p.Cluster, p.NewCluster, p.Zone, p.TargetZone, move)
	fmt.Fprintf(w, "plan %s   predicted downtime %.0f s   pre-stage %.0f s\n", p.Hash, p.PredictedDowntimeSeconds, p.PreStageSeconds)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VOLUME\tSERVER\tKIND\tGIB\tZONE\tWAY\tWINDOW S\tAFTER S\tNOTE")
	for _, m := range p.Volumes {
		way := string(m.Way)
		if m.Deferred {
			way += " (deferred)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%.0f\t%.0f\t%s\n", m.VolumeID, m.Server, m.Kind, m.SizeGiB, m.Zone, way, m.WindowSeconds, m.AfterSeconds, oneLine(m.Note, 80))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "critical path: %s\n", strings.Join(p.CriticalPath, " -> "))
	for _, b := range p.Blockers {
		fmt.Fprintf(w, "BLOCKER %s: %s\n", b.Kind, b.Message)
	}
}
