package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/config"
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
			var out api.StartedOperation
			if err := patchAPI(cc, http.MethodPost, "/v1/operations/patch", body, &out); err != nil {
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
			var rep api.PatchReport
			if err := patchAPI(cc, http.MethodGet, "/v1/patches/"+url.PathEscape(args[0]), nil, &rep); err != nil {
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

// patchAPI is the command line's small client of the API (until the shared API client
// package lands): one request with the bearer token of --token or the dev stack's data dir;
// an error answer becomes one line with its code.
func patchAPI(cc config.Client, method, path string, body []byte, out any) error {
	token := cc.Token
	if token == "" {
		b, err := os.ReadFile(filepath.Join(cc.DataDir, config.AdminTokenFile))
		if err != nil {
			return fmt.Errorf("no token: pass --token or set ANYOPS_TOKEN (%v)", errors.Unwrap(err))
		}
		token = strings.TrimSpace(string(b))
	}
	server := cc.Server
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(server, "/")+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("--server %q: %w", cc.Server, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the API at %s: %w", cc.Server, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e api.ErrorBody
		if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%s (%s, HTTP %d)", e.Error.Message, e.Error.Code, resp.StatusCode)
		}
		return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	return json.Unmarshal(data, out)
}
