package workflows

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
)

// fleetEnv is the real parts the fleet workflows run on in this package's tests: the shared
// Temporal dev server, a worker polling a task queue of the test's own (so no other test's
// worker takes its tasks), cloudsim at cloudsim.TestSpeed, and a SQLite inventory.
type fleetEnv struct {
	temporal client.Client
	queue    string
	endpoint string
	sim      *cloudsim.Sim
	aws      *activities.Clients
	store    *inventory.Store
}

// fastTiming matches cloudsim.TestSpeed: a poll every 20 ms real is every 20 s simulated.
var fastTiming = FleetTiming{PollInterval: 20 * time.Millisecond, HeartbeatTimeout: 5 * time.Second, CallTimeout: 30 * time.Second, WaitTimeout: time.Minute}

func newFleetEnv(t *testing.T) *fleetEnv {
	t.Helper()
	ctx := context.Background()
	e := &fleetEnv{temporal: testenv.TemporalClient(t), queue: "test-fleet-" + uuid.NewString()}
	e.sim, e.endpoint = cloudsim.NewTestServer(t, cloudsim.Config{})
	var err error
	if e.aws, err = activities.NewClients(ctx, config.AWS{Region: "us-east-1", Endpoint: e.endpoint}); err != nil {
		t.Fatal(err)
	}
	if e.store, err = inventory.Open(ctx, inventory.DriverSQLite, filepath.Join(t.TempDir(), "inv.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.store.Close() })
	w := worker.New(e.temporal, e.queue, worker.Options{DeadlockDetectionTimeout: 10 * time.Second})
	w.RegisterWorkflowWithOptions(DemoFleet, workflow.RegisterOptions{Name: "DemoFleet"})
	w.RegisterWorkflowWithOptions(FleetSync, workflow.RegisterOptions{Name: "FleetSync"})
	w.RegisterWorkflowWithOptions(BuildServer, workflow.RegisterOptions{Name: BuildServerWorkflowType})
	w.RegisterWorkflowWithOptions(BuildCluster, workflow.RegisterOptions{Name: BuildClusterWorkflowType})
	w.RegisterWorkflowWithOptions(FileServerFailover, workflow.RegisterOptions{Name: FailoverWorkflowType})
	w.RegisterWorkflowWithOptions(BackupRebuild, workflow.RegisterOptions{Name: BackupRebuildWorkflowType})
	w.RegisterWorkflowWithOptions(ServerReplace, workflow.RegisterOptions{Name: ServerReplaceWorkflowType})
	w.RegisterActivity(&activities.Sandboxes{Store: e.store})
	w.RegisterActivity(&activities.Inventory{Store: e.store})
	w.RegisterActivity(activities.NewCloud(e.aws))
	w.RegisterActivity(&activities.Hosts{Clients: e.aws, PollInterval: 20 * time.Millisecond})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return e
}

// run starts a workflow by type name with the id and waits for its result.
func (e *fleetEnv) run(t *testing.T, workflowType, id string, input, result any) client.WorkflowRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := e.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: e.queue}, workflowType, input)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, result); err != nil {
		t.Fatalf("%s %s: %v", workflowType, id, err)
	}
	return run
}

// status queries a workflow's Status.
func (e *fleetEnv) status(t *testing.T, id string) Status {
	t.Helper()
	v, err := e.temporal.QueryWorkflow(context.Background(), id, "", StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// injectFault posts a fault to cloudsim's control API.
func (e *fleetEnv) injectFault(t *testing.T, fault map[string]any) {
	t.Helper()
	body, _ := json.Marshal(fault)
	resp, err := http.Post(e.endpoint+"/_sim/faults", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST /_sim/faults %s: %s", body, resp.Status)
	}
}
