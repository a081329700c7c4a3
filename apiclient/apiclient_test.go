package apiclient_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/apiclient"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/worker"
	"github.com/anyops/anyops/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// startAPI serves a real API (SQLite inventory with the demo fleet, the Temporal dev server)
// and returns its URL; token is its admin token.
func startAPI(t *testing.T) (url string, store *inventory.Store) {
	t.Helper()
	store, err := inventory.Open(context.Background(), inventory.DriverSQLite, filepath.Join(t.TempDir(), "inv.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if _, err := store.SeedDemoFleet(context.Background()); err != nil {
		t.Fatal(err)
	}
	auth, err := api.ParseTokens("admin:admin-secret,viewer:viewer-secret")
	if err != nil {
		t.Fatal(err)
	}
	s := api.New(api.Deps{Store: store, Temporal: testenv.TemporalClient(t), Auth: auth, Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv.URL, store
}

// TestClientAgainstTheAPI proves the client's calls against a real API: starting an operation
// and joining it, reading it back by its id (which holds no slash here, and a slash in
// failover ids: escaped), listing, incidents, and that every error answer is an *Error with
// the API's code and message on one line.
func TestClientAgainstTheAPI(t *testing.T) {
	url, store := startAPI(t)
	ctx := context.Background()
	c, err := apiclient.New(url, "admin-secret")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = testenv.TemporalClient(t).TerminateWorkflow(ctx, workflows.FleetAuditWorkflowID, "", "test ended")
	})

	started, err := c.StartOperation(ctx, workflows.KindFleetAudit, []byte(`{"reason":"apiclient test"}`))
	if err != nil || started.ID != workflows.FleetAuditWorkflowID || started.Joined {
		t.Fatalf("start = %+v, %v", started, err)
	}
	joined, err := c.StartOperation(ctx, workflows.KindFleetAudit, nil)
	if err != nil || !joined.Joined || joined.RunID != started.RunID {
		t.Fatalf("second start = %+v, %v; want joined", joined, err)
	}
	op, err := c.GetOperation(ctx, started.ID)
	if err != nil || op.State != api.StateRunning || op.Kind != workflows.KindFleetAudit {
		t.Fatalf("get = %+v, %v", op, err)
	}
	list, err := c.ListOperations(ctx, apiclient.OperationFilter{Kind: workflows.KindFleetAudit, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	_ = list // visibility is eventually consistent: the call and its decoding are what is tested

	// A decision the workflow does not take: the workflow's answer, as a conflict. (An update
	// needs a worker to answer; the fleet audit then completes, so it is started again.)
	runWorker(t, store)
	if err := testenv.TemporalClient(t).GetWorkflow(ctx, started.ID, started.RunID).Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	started, err = c.StartOperation(ctx, workflows.KindFleetAudit, []byte(`{"reason":"apiclient test"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Decide(ctx, started.ID, api.DecisionApprove, api.DecisionRequest{Reason: "test"})
	wantAPIError(t, err, 409, anyops.ECONFLICT)
	t.Logf("approve of a fleet audit: %v", err)
	// The API's own checks, before Temporal is asked.
	_, err = c.Decide(ctx, started.ID, api.DecisionOverride, api.DecisionRequest{Reason: "r"})
	wantAPIError(t, err, 400, anyops.EINVALID)
	_, err = c.Decide(ctx, started.ID, api.DecisionAbort, api.DecisionRequest{})
	wantAPIError(t, err, 400, anyops.EINVALID)

	_, err = c.GetOperation(ctx, "failover/nobody")
	wantAPIError(t, err, 404, anyops.ENOTFOUND)
	_, err = c.StartOperation(ctx, "no-such-kind", nil)
	wantAPIError(t, err, 404, anyops.ENOTFOUND)

	inc, err := store.OpenIncident(ctx, inventory.Incident{Title: "file server failed", Server: inventory.DemoFileServer, Cluster: inventory.DemoCluster, WorkflowID: "failover/" + inventory.DemoFileServer})
	if err != nil {
		t.Fatal(err)
	}
	incs, err := c.ListIncidents(ctx, apiclient.IncidentFilter{State: "open", Server: inventory.DemoFileServer})
	if err != nil || len(incs.Items) != 1 || incs.Items[0].ID != inc.ID {
		t.Fatalf("incidents = %+v, %v", incs, err)
	}
	view, err := c.GetIncident(ctx, inc.ID)
	if err != nil || len(view.Timeline) != 1 || view.Workflow != nil {
		t.Fatalf("incident = %+v, %v", view, err)
	}
	_, err = c.ListIncidents(ctx, apiclient.IncidentFilter{State: "burning"})
	wantAPIError(t, err, 400, anyops.EINVALID)

	viewer, _ := apiclient.New(url, "viewer-secret")
	_, err = viewer.StartOperation(ctx, workflows.KindFleetAudit, nil)
	wantAPIError(t, err, 403, anyops.EFORBIDDEN)
	nobody, _ := apiclient.New(strings.TrimPrefix(url, "http://"), "wrong")
	_, err = nobody.GetOperation(ctx, started.ID)
	wantAPIError(t, err, 401, anyops.EUNAUTHORIZED)

	down, _ := apiclient.New("http://127.0.0.1:1", "x")
	if _, err := down.GetOperation(ctx, "x"); err == nil || !strings.Contains(err.Error(), "cannot reach the API at http://127.0.0.1:1") {
		t.Fatalf("unreachable API: %v", err)
	}
}

// runWorker runs an in-process worker on the control queue until the test ends.
func runWorker(t *testing.T, store *inventory.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- worker.Run(ctx, worker.Config{Client: testenv.TemporalClient(t), Deps: worker.Deps{Store: store},
			Logger: slog.New(slog.DiscardHandler), TaskQueues: []string{worker.TaskQueueControl}, StopTimeout: 5 * time.Second})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
}

func wantAPIError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var e *apiclient.Error
	if !errors.As(err, &e) || e.Status != status || e.Code != code {
		t.Fatalf("error %v, want HTTP %d %s", err, status, code)
	}
	if strings.Contains(err.Error(), "\n") || e.Message == "" {
		t.Fatalf("error %q is not one line with a message", err)
	}
}

// TestFromConfigFindsTheDevToken proves the token comes from --token when given, else from
// the dev stack's data dir, and that without either the error says what to do.
func TestFromConfigFindsTheDevToken(t *testing.T) {
	dir := t.TempDir()
	if _, err := apiclient.FromConfig(config.Client{Server: "http://127.0.0.1:8080", DataDir: dir}); err == nil || !strings.Contains(err.Error(), "--token") {
		t.Fatalf("no token anywhere: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, config.AdminTokenFile), []byte("dev-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url, _ := startAPI(t)
	// The dev token is not one this API knows: the answer proves it was sent, trimmed.
	c, err := apiclient.FromConfig(config.Client{Server: url, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListIncidents(context.Background(), apiclient.IncidentFilter{})
	wantAPIError(t, err, 401, anyops.EUNAUTHORIZED)
	c, err = apiclient.FromConfig(config.Client{Server: url, DataDir: dir, Token: "admin-secret"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListIncidents(context.Background(), apiclient.IncidentFilter{}); err != nil {
		t.Fatalf("with --token: %v", err)
	}
	if _, err := apiclient.New("ftp://x", ""); err == nil {
		t.Fatal("an ftp server was accepted")
	}
}
