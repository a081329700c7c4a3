package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/worker"
	"github.com/anyops/anyops/workflows"
)

// TestCLIIsTheAPIsClient runs the real binary's `op` and `incident` commands against a real
// API (SQLite inventory with the demo fleet, the Temporal dev server, an in-process worker),
// reaching it as a developer does with `make run` in another terminal: --server, and the token
// from the data dir. It proves: op start starts and joins; op show --watch, piped, prints plain
// progress lines until the operation completes; op list and incident list/show print tables;
// an error is one line on stderr with a non-zero exit; a token from ANYOPS_TOKEN works.
func TestCLIIsTheAPIsClient(t *testing.T) {
	bin := anyopsBinary(t)
	ctx := context.Background()
	store, err := inventory.Open(ctx, inventory.DriverSQLite, filepath.Join(t.TempDir(), "inv.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.SeedDemoFleet(ctx); err != nil {
		t.Fatal(err)
	}
	auth, err := api.ParseTokens("admin:cli-admin-secret")
	if err != nil {
		t.Fatal(err)
	}
	tc := testenv.TemporalClient(t)
	srv := httptest.NewServer(api.New(api.Deps{Store: store, Temporal: tc, Auth: auth, Logger: slog.New(slog.DiscardHandler)}).Handler())
	defer srv.Close()
	dataDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, config.AdminTokenFile), []byte("cli-admin-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(env []string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		return runCLI(t, bin, env, args...)
	}
	conn := []string{"--server", srv.URL, "--data-dir", dataDir}

	// No worker yet: the audit stays running, so a second start joins it.
	out, errOut, code := run(nil, append([]string{"op", "start", workflows.KindFleetAudit, "--input", `{"reason":"cli test"}`}, conn...)...)
	if code != 0 || !strings.HasPrefix(out, "started fleet-audit (run ") {
		t.Fatalf("op start = %d %q %q", code, out, errOut)
	}
	out, _, code = run(nil, append([]string{"op", "start", workflows.KindFleetAudit}, conn...)...)
	if code != 0 || !strings.HasPrefix(out, "joined fleet-audit") {
		t.Fatalf("second op start = %d %q", code, out)
	}

	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- worker.Run(wctx, worker.Config{Client: tc, Deps: worker.Deps{Store: store}, Logger: slog.New(slog.DiscardHandler),
			TaskQueues: []string{worker.TaskQueueControl}, StopTimeout: 5 * time.Second})
	}()
	defer func() { cancel(); <-done }()

	out, errOut, code = run(nil, append([]string{"op", "show", workflows.FleetAuditWorkflowID, "--watch", "--interval", "100ms"}, conn...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || !strings.Contains(lines[len(lines)-1], "fleet-audit completed") || strings.Contains(out, "\x1b[") {
		t.Fatalf("op show --watch (piped) = %d\n%s\n%s\nwant plain lines ending with completed", code, out, errOut)
	}
	// On a terminal the same watch draws the full view (redrawn in place while it runs).
	if _, _, code := run(nil, append([]string{"op", "start", workflows.KindFleetAudit}, conn...)...); code != 0 {
		t.Fatal("op start failed")
	}
	tty := exec.Command(bin, append([]string{"op", "show", workflows.FleetAuditWorkflowID, "--watch", "--interval", "100ms"}, conn...)...)
	ptmx, err := pty.Start(tty)
	if err != nil {
		t.Fatal(err)
	}
	drawn, _ := io.ReadAll(ptmx) // until the command exits (EIO on Linux)
	_ = ptmx.Close()
	if err := tty.Wait(); err != nil || !strings.Contains(string(drawn), "progress  [") || !strings.Contains(string(drawn), "fleet-audit  fleet-audit  completed") {
		t.Fatalf("op show --watch on a terminal: %v\n%q", err, drawn)
	}
	out, _, code = run(nil, append([]string{"op", "show", workflows.FleetAuditWorkflowID}, conn...)...)
	if code != 0 || !strings.Contains(out, "phase     done") || !strings.Contains(out, "progress  [") || !strings.Contains(out, "result") {
		t.Fatalf("op show = %d\n%s", code, out)
	}

	inc, err := store.OpenIncident(ctx, inventory.Incident{Title: "file server live-file failed", Server: inventory.DemoFileServer,
		Cluster: inventory.DemoCluster, WorkflowID: "failover/" + inventory.DemoFileServer})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.AddIncidentEvent(ctx, inventory.IncidentEvent{IncidentID: inc.ID, Kind: inventory.IncidentEventAlarm, Source: "sns", DeliveryID: "m-1", Message: "CloudWatch alarm"}); err != nil {
		t.Fatal(err)
	}
	// The token from ANYOPS_TOKEN, with no data dir to fall back on.
	out, _, code = run([]string{"ANYOPS_TOKEN=cli-admin-secret"}, "incident", "list", "--server", srv.URL, "--data-dir", t.TempDir())
	if code != 0 || !strings.Contains(out, "ID") || !strings.Contains(out, "failover/live-file") {
		t.Fatalf("incident list = %d\n%s", code, out)
	}
	out, _, code = run(nil, append([]string{"incident", "show", "1"}, conn...)...)
	if code != 0 || !strings.Contains(out, "timeline") || !strings.Contains(out, "alarm") || !strings.Contains(out, "sns") {
		t.Fatalf("incident show = %d\n%s", code, out)
	}

	for _, args := range [][]string{
		{"op", "show", "failover/nobody"},
		{"incident", "show", "999"},
		{"op", "override", workflows.FleetAuditWorkflowID, "--reason", "x"},
		{"op", "start", "fleet-audit", "--input", "{not json"},
	} {
		_, errOut, code := run(nil, append(args, conn...)...)
		if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.HasPrefix(errOut, "anyops: ") {
			t.Errorf("%v: exit %d, stderr %q; want a non-zero exit and one line", args, code, errOut)
		}
	}
	_, errOut, code = run(nil, "op", "list", "--server", "http://127.0.0.1:1", "--token", "x")
	if code == 0 || !strings.Contains(errOut, "cannot reach the API at http://127.0.0.1:1") {
		t.Errorf("unreachable API: exit %d, %q", code, errOut)
	}
}

// runCLI runs the anyops binary with args (and env added to the test's environment) and
// returns what it printed and its exit code.
func runCLI(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}
