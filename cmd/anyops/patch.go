package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/apiclient"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/workflows"
)

// newPatchCmd is `anyops patch`: fleet patches through the API of a running stack.
func newPatchCmd() *cobra.Command {
	var cc config.Client
	var asJSON bool
	cmd := &cobra.Command{Use: "patch", Short: "Fleet security patches through the API: start one, show its report"}
	b := config.NewBinder(cmd.PersistentFlags())
	b.BindClient(&cc)
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print the API's JSON")

	start := &cobra.Command{
		Use:   "start FILE",
		Short: "Start a fleet patch: FILE (- for stdin) is the body of POST /v1/operations/patch (advisory, target, rates, canary)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := b.Load(); err != nil {
				return err
			}
			body, err := readInput(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			c, err := apiclient.FromConfig(cc)
			if err != nil {
				return err
			}
			out, err := c.StartOperation(cmd.Context(), workflows.KindPatch, body)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(out)
			}
			verb := "started"
			if out.Joined {
				verb = "joined the running"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s (run %s); follow it with: anyops patch status %s\n", verb, out.ID, out.RunID, strings.TrimPrefix(out.ID, "patch/"))
			return nil
		},
	}
	status := &cobra.Command{
		Use:   "status ADVISORY",
		Short: "Show an advisory's rollout: its state and, per server, the check before and after, restarts and times",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := b.Load(); err != nil {
				return err
			}
			c, err := apiclient.FromConfig(cc)
			if err != nil {
				return err
			}
			rep, err := c.GetPatch(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			printPatchReport(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	cmd.AddCommand(start, status)
	return cmd
}

func readInput(stdin io.Reader, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(name)
}

// printPatchReport writes the report as a person reads it.
func printPatchReport(w io.Writer, rep api.PatchReport) {
	fmt.Fprintf(w, "%s  %s  errors %d (max %d)  started %s", rep.Advisory, rep.State, rep.Errors, rep.MaxErrors, rep.StartedAt.UTC().Format(time.RFC3339))
	if rep.FinishedAt != nil {
		fmt.Fprintf(w, "  finished %s", rep.FinishedAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	if rep.StopReason != "" {
		fmt.Fprintf(w, "stopped: %s\n", rep.StopReason)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tROLE\tOUTCOME\tBEFORE\tAFTER\tRESTARTED\tTOOK\tNOTE")
	for _, s := range rep.Servers {
		took := ""
		if s.StartedAt != nil && s.FinishedAt != nil {
			took = s.FinishedAt.Sub(*s.StartedAt).Round(time.Second).String()
		}
		restarted := strings.Join(s.Restarted, ",")
		if restarted == "" {
			restarted = "-"
		}
		name := s.Server
		if s.Canary {
			name += " (canary)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, s.Role, s.Outcome, checkSummary(s.Before), checkSummary(s.After), restarted, took, s.Message)
	}
	tw.Flush()
	if len(rep.Notices) > 0 {
		sent := 0
		for _, n := range rep.Notices {
			if n.SentAt != nil {
				sent++
			}
		}
		fmt.Fprintf(w, "notices: %d of %d sent\n", sent, len(rep.Notices))
	}
	for _, d := range rep.Drained {
		fmt.Fprintf(w, "drained: %s (%s)\n", d.Server, d.Reason)
	}
}

// checkSummary is "libssl1.0.0 1.0.1f-1ubuntu2, vulnerable".
func checkSummary(c *anyops.ServerCheck) string {
	if c == nil {
		return "-"
	}
	v := c.Versions["libssl1.0.0"]
	if v == "" {
		for _, x := range c.Versions {
			v = x
			break
		}
	}
	return fmt.Sprintf("%s %s", v, c.Check)
}
