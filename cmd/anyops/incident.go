package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/apiclient"
	"github.com/anyops/anyops/inventory"
)

// newIncidentCmd is `anyops incident`: incidents through the API.
func newIncidentCmd() *cobra.Command {
	cmd, connect := newClientGroup("incident", "Incidents through the API: list, show")
	cmd.AddCommand(newIncidentListCmd(connect), newIncidentShowCmd(connect))
	return cmd
}

func newIncidentListCmd(connect func() (*apiclient.Client, error)) *cobra.Command {
	var (
		f      apiclient.IncidentFilter
		all    bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List incidents, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			incs, err := collect(all, func(cursor string) (api.List[inventory.Incident], error) {
				f.Cursor = cursor
				return c.ListIncidents(cmd.Context(), f)
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, incs)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tSERVER\tWORKFLOW\tOPENED\tTITLE")
			for _, i := range incs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", i.ID, i.State, dash(i.Server), dash(i.WorkflowID), stamp(i.OpenedAt), oneLine(i.Title, 80))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&f.State, "state", "", "only open or only resolved ones")
	cmd.Flags().StringVar(&f.Cluster, "cluster", "", "only of this cluster")
	cmd.Flags().StringVar(&f.Server, "server-name", "", "only about this server (by its inventory name; --server is the API)")
	cmd.Flags().IntVar(&f.Limit, "limit", 0, "page size (the API's default: 50)")
	cmd.Flags().BoolVar(&all, "all", false, "every page, not only the first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newIncidentShowCmd(connect func() (*apiclient.Client, error)) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show an incident: its timeline (every alarm, redelivery and step) and its recovery workflow",
		Args:  requireArg("incident id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return fmt.Errorf("incident id %q is not a positive number", args[0])
			}
			c, err := connect()
			if err != nil {
				return err
			}
			inc, err := c.GetIncident(cmd.Context(), id)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, inc)
			}
			fmt.Fprintf(out, "incident %d  %s  %s\n", inc.ID, inc.State, inc.Title)
			fmt.Fprintf(out, "server    %s (cluster %s)\n", dash(inc.Server), dash(inc.Cluster))
			fmt.Fprintf(out, "opened    %s", stamp(inc.OpenedAt))
			if inc.ResolvedAt != nil {
				fmt.Fprintf(out, ", resolved %s after %s", stamp(*inc.ResolvedAt), humanDuration(inc.ResolvedAt.Sub(inc.OpenedAt)))
			}
			fmt.Fprintln(out)
			switch {
			case inc.Workflow != nil:
				fmt.Fprintf(out, "workflow  %s\n", progressLine(*inc.Workflow))
			case inc.WorkflowError != "":
				fmt.Fprintf(out, "workflow  %s: %s\n", inc.WorkflowID, inc.WorkflowError)
			case inc.WorkflowID != "":
				fmt.Fprintf(out, "workflow  %s (not started yet)\n", inc.WorkflowID)
			}
			fmt.Fprintln(out, "timeline")
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			for _, e := range inc.Timeline {
				fmt.Fprintf(tw, "  %s\t+%s\t%s\t%s\t%s\n", stamp(e.At), humanDuration(e.At.Sub(inc.OpenedAt).Truncate(time.Second)), e.Kind, dash(e.Source), oneLine(e.Message, 120))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
