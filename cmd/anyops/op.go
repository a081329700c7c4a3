package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/apiclient"
)

// newOpCmd is `anyops op`: operations (workflows) through the API.
func newOpCmd() *cobra.Command {
	cmd, connect := newClientGroup("op", "Operations through the API: list, show (--watch), start, cancel, approve, abort, override")
	cmd.AddCommand(newOpListCmd(connect), newOpShowCmd(connect), newOpStartCmd(connect), newOpCancelCmd(connect),
		newOpDecisionCmd(connect, api.DecisionApprove), newOpDecisionCmd(connect, api.DecisionAbort), newOpDecisionCmd(connect, api.DecisionOverride))
	return cmd
}

func newOpListCmd(connect func() (*apiclient.Client, error)) *cobra.Command {
	var (
		f       apiclient.OperationFilter
		all     bool
		asJSON  bool
		columns = "ID\tKIND\tSTATE\tSTARTED\tCLOSED"
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List operations, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			ops, err := collect(all, func(cursor string) (api.List[api.Operation], error) {
				f.Cursor = cursor
				return c.ListOperations(cmd.Context(), f)
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, ops)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, columns)
			for _, op := range ops {
				closed := "-"
				if op.Closed != nil {
					closed = stamp(*op.Closed)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", op.ID, op.Kind, op.State, stamp(op.Started), closed)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&f.Kind, "kind", "", "only operations of this kind")
	cmd.Flags().StringVar(&f.State, "state", "", "only in this state: running, completed, failed, canceled, terminated, timed-out")
	cmd.Flags().IntVar(&f.Limit, "limit", 0, "page size (the API's default: 50)")
	cmd.Flags().BoolVar(&all, "all", false, "every page, not only the first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newOpShowCmd(connect func() (*apiclient.Client, error)) *cobra.Command {
	var (
		watch    bool
		asJSON   bool
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show an operation: state, phase, progress, ETA, steps, result; --watch follows it to its end",
		Long: "Show an operation. With --watch it follows the operation until it ends: on a terminal the\n" +
			"status is redrawn in place; piped, a line is printed whenever the phase, progress or message\n" +
			"changes. It exits non-zero when the operation ends other than completed.",
		Args: requireArg("operation id (e.g. failover/live-file)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !watch {
				op, err := c.GetOperation(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(out, op)
				}
				printOperation(out, op, time.Now())
				return nil
			}
			ctx, stop := interruptible(cmd)
			defer stop()
			return watchOperation(ctx, c, args[0], out, isTerminal(out) && !asJSON, interval)
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow the operation until it ends")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (with --watch: plain lines)")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often --watch asks")
	return cmd
}

// watchOperation follows an operation until it is no longer running, redrawing its status in
// place on a terminal (redraw) or printing a line per change. It fails when the operation ends
// other than completed.
func watchOperation(ctx context.Context, c *apiclient.Client, id string, out io.Writer, redraw bool, interval time.Duration) error {
	op, ended, err := follow(ctx, out, redraw, interval, getOperation(c, id))
	switch {
	case err != nil || !ended: // interrupted: the operation goes on
		return err
	case op.State == api.StateCompleted:
		return nil
	case op.Error != "":
		return fmt.Errorf("operation %s %s: %s", id, op.State, oneLine(op.Error, 300))
	}
	return fmt.Errorf("operation %s %s", id, op.State)
}

// getOperation is follow's get of an operation through the API.
func getOperation(c *apiclient.Client, id string) func(context.Context) (api.Operation, bool, error) {
	return func(ctx context.Context) (api.Operation, bool, error) {
		op, err := c.GetOperation(ctx, id)
		return op, op.State == api.StateRunning, err
	}
}

// progressLine is the one-line form of an operation's progress.
func progressLine(op api.Operation) string {
	line := op.ID + " " + op.State
	if st := op.Status; st != nil {
		line += fmt.Sprintf(" %s %.0f%%", st.Phase, st.Progress*100)
		if st.ETA != nil {
			line += " ETA " + stamp(*st.ETA)
		}
		if st.Message != "" {
			line += ": " + oneLine(st.Message, 160)
		}
	}
	return line
}

// printOperation writes the full view of an operation.
func printOperation(w io.Writer, op api.Operation, now time.Time) {
	fmt.Fprintf(w, "%s  %s  %s  started %s (%s ago)", op.ID, op.Kind, op.State, stamp(op.Started), humanDuration(now.Sub(op.Started)))
	if op.Closed != nil {
		fmt.Fprintf(w, ", closed %s", stamp(*op.Closed))
	}
	fmt.Fprintln(w)
	if st := op.Status; st != nil {
		fmt.Fprintf(w, "phase     %s\n", st.Phase)
		if st.Message != "" {
			fmt.Fprintf(w, "message   %s\n", oneLine(st.Message, 200))
		}
		const width = 30
		done := int(st.Progress*width + 0.5)
		done = max(0, min(done, width))
		fmt.Fprintf(w, "progress  [%s%s] %3.0f%%", strings.Repeat("#", done), strings.Repeat(".", width-done), st.Progress*100)
		if st.ETA != nil {
			fmt.Fprintf(w, "  ETA %s (in %s)", stamp(*st.ETA), humanDuration(st.ETA.Sub(now)))
		}
		fmt.Fprintln(w)
		if len(st.Steps) > 0 {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			for _, s := range st.Steps {
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.State, s.Name, oneLine(s.Message, 100))
			}
			_ = tw.Flush()
		}
	} else if op.State == api.StateRunning {
		fmt.Fprintln(w, "status    not answered (is a worker running?)")
	}
	if len(op.Result) > 0 {
		fmt.Fprintf(w, "result    %s\n", oneLine(string(op.Result), 400))
	}
	if op.Error != "" {
		fmt.Fprintf(w, "error     %s\n", oneLine(op.Error, 400))
	}
}

func newOpStartCmd(connect func() (*apiclient.Client, error)) *cobra.Command {
	var (
		body   string
		file   string
		watch  bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "start KIND",
		Short: "Start an operation of a kind (or join the one running for the same business key)",
		Long:  "Start an operation. The kind's input is JSON, given with --input or --input-file (- for stdin);\nnone means {}. Kinds and their inputs: GET /v1/openapi.json.",
		Args:  requireArg("operation kind (e.g. fleet-sync)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if body != "" && file != "" {
				return errors.New("give the input with --input or --input-file, not both")
			}
			raw := []byte(body)
			if file != "" {
				var err error
				if file == "-" {
					raw, err = io.ReadAll(cmd.InOrStdin())
				} else {
					raw, err = os.ReadFile(file)
				}
				if err != nil {
					return err
				}
			}
			if len(strings.TrimSpace(string(raw))) > 0 && !json.Valid(raw) {
				return errors.New("the input is not JSON")
			}
			c, err := connect()
			if err != nil {
				return err
			}
			started, err := c.StartOperation(cmd.Context(), args[0], raw)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case asJSON:
				if err := printJSON(out, started); err != nil {
					return err
				}
			case started.Joined:
				fmt.Fprintf(out, "joined %s (run %s): one was running already\n", started.ID, started.RunID)
			default:
				fmt.Fprintf(out, "started %s (run %s)\n", started.ID, started.RunID)
			}
			if !watch {
				return nil
			}
			ctx, stop := interruptible(cmd)
			defer stop()
			return watchOperation(ctx, c, started.ID, out, isTerminal(out) && !asJSON, time.Second)
		},
	}
	cmd.Flags().StringVar(&body, "input", "", "the operation's input, JSON")
	cmd.Flags().StringVar(&file, "input-file", "", "file with the operation's input, JSON (- for stdin)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "then follow it until it ends")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newOpCancelCmd(connect func() (*apiclient.Client, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Ask a running operation to cancel (the workflow winds down)",
		Args:  requireArg("operation id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			res, err := c.CancelOperation(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s (run %s): %s\n", res.ID, res.RunID, res.State)
			return nil
		},
	}
}

// newOpDecisionCmd is `anyops op approve|abort|override ID`.
func newOpDecisionCmd(connect func() (*apiclient.Client, error), d api.Decision) *cobra.Command {
	var req api.DecisionRequest
	short := map[api.Decision]string{
		api.DecisionApprove:  "Approve the step a running operation waits on (the cutover, when its policy asks)",
		api.DecisionAbort:    "Abort a running operation, with a reason",
		api.DecisionOverride: "Override an interlock of a running operation, with a reason (audited)",
	}[d]
	cmd := &cobra.Command{
		Use:   string(d) + " ID",
		Short: short,
		Args:  requireArg("operation id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			res, err := c.Decide(cmd.Context(), args[0], d, req)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s accepted (run %s)", res.ID, res.Decision, res.RunID)
			if len(res.Result) > 0 && string(res.Result) != "null" {
				fmt.Fprintf(cmd.OutOrStdout(), ": %s", oneLine(string(res.Result), 300))
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
	switch d {
	case api.DecisionApprove:
		cmd.Flags().StringVar(&req.Reason, "reason", "", "why (optional)")
		cmd.Flags().StringVar(&req.PlanHash, "plan-hash", "", "the plan approved (a release's: its Status's plan.hash; a stale one is refused)")
	case api.DecisionAbort:
		cmd.Flags().StringVar(&req.Reason, "reason", "", "why (required)")
	case api.DecisionOverride:
		cmd.Flags().StringVar(&req.Interlock, "interlock", "", "the interlock to pass (required)")
		cmd.Flags().StringVar(&req.Reason, "reason", "", "why (required; audited)")
	}
	return cmd
}
