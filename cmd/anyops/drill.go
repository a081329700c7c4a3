package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/apiclient"
	"github.com/anyops/anyops/workflows"
)

// newDrillCmd is `anyops drill`: drills through the API (docs/drills.md).
func newDrillCmd() *cobra.Command {
	cmd, connect := newClientGroup("drill", "Drills through the API: list the scenarios (or the runs), run one, show one")
	cmd.AddCommand(newDrillListCmd(connect), newDrillRunCmd(connect), newDrillShowCmd(connect))
	return cmd
}

func newDrillListCmd(connect func() (*apiclient.Client, error)) *cobra.Command {
	var (
		runs   bool
		all    bool
		asJSON bool
		f      apiclient.DrillFilter
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the scenarios that ship, with their speed and goals; --runs lists the drills run so far",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !runs {
				scenarios, err := c.DrillScenarios(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(out, scenarios)
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SCENARIO\tSPEED\tGOALS\tDESCRIPTION")
				for _, s := range scenarios {
					fmt.Fprintf(tw, "%s\t%g\t%s\t%s\n", s.Name, s.Speed, dash(goalsLine(s.Goals)), s.Description)
				}
				return tw.Flush()
			}
			list, err := collect(all, func(cursor string) (api.List[api.DrillView], error) {
				f.Cursor = cursor
				return c.ListDrills(cmd.Context(), f)
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(out, list)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSCENARIO\tSTATE\tCLUSTER\tSPEED\tSTARTED\tFINISHED")
			for _, d := range list {
				finished := "-"
				if d.FinishedAt != nil {
					finished = stamp(*d.FinishedAt)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%g\t%s\t%s\n", d.ID, d.Scenario, d.State, d.Cluster, d.Speed, stamp(d.CreatedAt), finished)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&runs, "runs", false, "list the drills run so far, newest first, instead of the scenarios")
	cmd.Flags().StringVar(&f.State, "state", "", "with --runs: only running, completed, failed or canceled ones")
	cmd.Flags().IntVar(&f.Limit, "limit", 0, "with --runs: page size (the API's default: 50)")
	cmd.Flags().BoolVar(&all, "all", false, "with --runs: every page, not only the first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func goalsLine(goals map[string]float64) string {
	var parts []string
	for k, v := range goals {
		parts = append(parts, fmt.Sprintf("%s≤%g", strings.TrimSuffix(k, "_seconds"), v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func newDrillRunCmd(connect func() (*apiclient.Client, error)) *cobra.Command {
	var (
		file     string
		asJSON   bool
		keep     bool
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "run SCENARIO",
		Short: "Run a drill and follow it to its report: live progress on a terminal, plain lines when piped",
		Long: "Run a drill: the API numbers it n, and drill/<n> builds the cluster drill-<n> beside the demo fleet,\n" +
			"replays the scenario in cloudsim, lets the alarms and recoveries respond, reports, and tears down.\n" +
			"SCENARIO is a shipped scenario (anyops drill list); --scenario FILE runs a scenario file instead.\n" +
			"With --json the report is the one JSON object on stdout and progress goes to stderr. The command\n" +
			"exits non-zero when the drill fails or misses one of its scenario's goals.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 || (len(args) == 0) == (file == "") {
				return errors.New("give a scenario's name or --scenario FILE, one of the two")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.StartDrill{Policy: policyOf(keep)}
			if file != "" {
				src, err := readScenarioFile(cmd.InOrStdin(), file)
				if err != nil {
					return err
				}
				req.ScenarioFile = src
			} else {
				req.Scenario = args[0]
			}
			c, err := connect()
			if err != nil {
				return err
			}
			d, err := c.StartDrill(cmd.Context(), req)
			if err != nil {
				return err
			}
			out, progress := cmd.OutOrStdout(), cmd.OutOrStdout()
			if asJSON {
				progress = cmd.ErrOrStderr()
			}
			fmt.Fprintf(progress, "started %s: %s on %s\n", d.WorkflowID, d.Scenario, d.Cluster)
			ctx, stop := interruptible(cmd)
			defer stop()
			final, err := watchDrill(ctx, c, d.ID, progress, isTerminal(progress), interval)
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				fmt.Fprintf(progress, "\n%s goes on; anyops drill show %d\n", d.WorkflowID, d.ID)
				return nil
			}
			return finishDrill(out, final, asJSON)
		},
	}
	cmd.Flags().StringVar(&file, "scenario", "", "run this scenario file (YAML or JSON; - for stdin) instead of a shipped one")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as one JSON object (progress to stderr)")
	cmd.Flags().BoolVar(&keep, "keep-cluster", false, "leave the drill's cluster standing for a post-mortem")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often to ask for progress")
	return cmd
}

func policyOf(keep bool) workflows.DrillPolicy { return workflows.DrillPolicy{KeepCluster: keep} }

// readScenarioFile reads --scenario: a file, or stdin for -.
func readScenarioFile(stdin io.Reader, file string) (string, error) {
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		b, err = os.ReadFile(filepath.Clean(file))
	}
	if err != nil {
		return "", fmt.Errorf("--scenario: %w", err)
	}
	return string(b), nil
}

// finishDrill prints a finished drill's report and says whether it failed or missed a goal.
func finishDrill(out io.Writer, d api.DrillView, asJSON bool) error {
	if d.Report != nil {
		if asJSON {
			if err := printJSON(out, d.Report); err != nil {
				return err
			}
		} else {
			printReport(out, *d.Report)
		}
	}
	if d.State != anyops.DrillCompleted {
		if d.Error != "" {
			return fmt.Errorf("%s %s: %s", d.WorkflowID, d.State, oneLine(d.Error, 300))
		}
		return fmt.Errorf("%s %s", d.WorkflowID, d.State)
	}
	if d.Report == nil {
		return fmt.Errorf("%s completed without a report", d.WorkflowID)
	}
	var missed []string
	for _, k := range sortedKeys(d.Report.Goals) {
		if g := d.Report.Goals[k]; !g.Met {
			missed = append(missed, fmt.Sprintf("%s %s > %g", k, valueOr(g.Value), g.Bound))
		}
	}
	if len(missed) > 0 {
		return fmt.Errorf("%s %s missed its goals: %s", d.WorkflowID, d.Scenario, strings.Join(missed, ", "))
	}
	return nil
}

func valueOr(v *float64) string {
	if v == nil {
		return "none"
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// watchDrill follows a drill until it is no longer running: on a terminal its status is
// redrawn in place, elsewhere a line is printed whenever it changes. An interrupt stops the
// watching, not the drill.
func watchDrill(ctx context.Context, c *apiclient.Client, id int64, out io.Writer, redraw bool, interval time.Duration) (api.DrillView, error) {
	var d api.DrillView
	_, _, err := follow(ctx, out, redraw, interval, func(ctx context.Context) (api.Operation, bool, error) {
		var err error
		d, err = c.GetDrill(ctx, id)
		op := api.Operation{ID: d.WorkflowID, Kind: "drill", State: string(d.State), Started: d.CreatedAt, Closed: d.FinishedAt, Status: d.Status}
		return op, d.State == anyops.DrillRunning, err
	})
	return d, err
}

func newDrillShowCmd(connect func() (*apiclient.Client, error)) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a drill: its state, its progress while it runs, its report once it has one",
		Args:  requireArg("drill number (drill/<n>: n)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(strings.TrimPrefix(args[0], "drill/"), 10, 64)
			if err != nil || id <= 0 {
				return fmt.Errorf("drill id %q is not a positive number", args[0])
			}
			c, err := connect()
			if err != nil {
				return err
			}
			d, err := c.GetDrill(cmd.Context(), id)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, d)
			}
			printOperation(out, api.Operation{ID: d.WorkflowID, Kind: "drill " + d.Scenario, State: string(d.State), Started: d.CreatedAt,
				Closed: d.FinishedAt, Status: d.Status}, time.Now())
			if d.Error != "" {
				fmt.Fprintf(out, "error     %s\n", oneLine(d.Error, 400))
			}
			if d.Report != nil {
				fmt.Fprintln(out)
				printReport(out, *d.Report)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printReport writes a report for a person: the figures, the goals, the main events.
func printReport(w io.Writer, r anyops.DrillReport) {
	secs := func(v *float64) string {
		if v == nil {
			return "never"
		}
		return fmt.Sprintf("%.1f s", *v)
	}
	state := "recovered"
	if !r.Recovered {
		state = "NOT recovered"
	}
	if r.TimedOut {
		state += " (timed out)"
	}
	fmt.Fprintf(w, "%s %s on %s at speed %g: %s\n", r.Drill, r.Scenario, r.Cluster, r.Speed, state)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	hot := "a hot backup at the end"
	if !r.HotBackupAtEnd {
		hot = "no hot backup at the end"
	}
	fmt.Fprintf(tw, "  rto\t%s\t(fault → every client reads and writes its home)\n", secs(r.RTOSeconds))
	fmt.Fprintf(tw, "  detection\t%s\t(fault → the first incident)\n", secs(r.DetectSeconds))
	fmt.Fprintf(tw, "  control plane\t%.1f s\t(of the rto, waiting on Temporal and the worker)\n", r.ControlPlaneSeconds)
	fmt.Fprintf(tw, "  no hot backup\t%.1f s\t(%s)\n", r.NoHotBackupSeconds, hot)
	fmt.Fprintf(tw, "  lost\t%d bytes\t\n", r.LostBytes)
	fmt.Fprintf(tw, "  interlocks\t%d violated\t\n", r.InterlockViolations)
	fmt.Fprintf(tw, "  duplicates\t%d\t\n", r.DuplicateResources)
	fmt.Fprintf(tw, "  winner\t%s\t\n", dash(r.Winner))
	for _, k := range sortedKeys(r.Extra) {
		fmt.Fprintf(tw, "  %s\t%v\t\n", k, r.Extra[k])
	}
	_ = tw.Flush()
	for _, k := range sortedKeys(r.Goals) {
		g := r.Goals[k]
		verdict := "met"
		if !g.Met {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "  goal %s ≤ %g: %s (%s)\n", k, g.Bound, verdict, valueOr(g.Value))
	}
	for _, v := range r.Violations {
		fmt.Fprintf(w, "  violation %+.1f s %s %s: %s\n", v.OffsetSeconds, v.Kind, v.Resource, oneLine(v.Message, 120))
	}
	for _, rec := range r.Recoveries {
		fmt.Fprintf(w, "  incident %d: %s %s %s\n", rec.IncidentID, rec.WorkflowID, rec.State, rec.Winner)
	}
	const shown = 40
	var lines []anyops.DrillEvent
	for _, e := range r.Timeline {
		if e.Source != anyops.DrillSourceCloud || strings.HasPrefix(e.Type, "fault.") || strings.HasPrefix(e.Type, "nfs.server.") ||
			e.Type == "drbd.primary" || e.Type == "data.lost" || e.Type == "instance.running" || e.Type == "instance.stopped" {
			lines = append(lines, e)
		}
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, "  timeline (seconds from the fault; --json has every event):")
	}
	for i, e := range lines {
		if i == shown {
			fmt.Fprintf(w, "    … %d more\n", len(lines)-shown)
			break
		}
		fmt.Fprintf(w, "    %+8.1f  %-8s %-26s %s\n", e.OffsetSeconds, e.Source, e.Type, oneLine(e.Message, 100))
	}
}
