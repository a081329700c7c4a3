package worker

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/workflows"
)

// cloudAndInventory returns cloud clients of a fresh cloudsim and an empty SQLite inventory,
// both closed when the test ends.
func cloudAndInventory(t *testing.T) (*activities.Clients, *inventory.Store) {
	t.Helper()
	_, endpoint := cloudsim.NewTestServer(t, cloudsim.Config{})
	clients, err := activities.NewClients(context.Background(), config.AWS{Region: "us-east-1", Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	store, err := inventory.Open(context.Background(), inventory.DriverSQLite, filepath.Join(t.TempDir(), "inv.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return clients, store
}

// TestEnsureDemoFleetBuildsSyncsAndSchedules runs what `anyops dev` runs at start-up: Run
// serves the real task queues with cloud clients for cloudsim, and EnsureDemoFleet builds the
// demo fleet, fills the empty inventory from the cloud, starts the file server's NFS watch and
// creates the fleet-sync schedule. Called a second time (a restart of dev) it returns the same
// instances and starts no second watch.
func TestEnsureDemoFleetBuildsSyncsAndSchedules(t *testing.T) {
	ctx := context.Background()
	tc := testenv.TemporalClient(t)
	clients, store := cloudAndInventory(t)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(runCtx, Config{Client: tc, Deps: Deps{Store: store, AWS: clients}, Logger: slog.New(slog.DiscardHandler)})
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		_ = tc.ScheduleClient().GetHandle(context.Background(), FleetSyncScheduleID).Delete(context.Background())
	})

	timing := workflows.FleetTiming{PollInterval: 20 * time.Millisecond, HeartbeatTimeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	watch := workflows.NFSWatchTiming{Interval: time.Hour} // one round is enough here
	t.Cleanup(func() {
		_ = tc.TerminateWorkflow(context.Background(), workflows.NFSWatchWorkflowID(inventory.DemoFileServer), "", "test ended")
	})
	fleet, err := EnsureDemoFleet(ctx, tc, timing, watch)
	if err != nil {
		t.Fatal(err)
	}
	servers, _, err := store.ListServers(ctx, inventory.ServerFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != len(inventory.DemoFleet().Servers) {
		t.Fatalf("inventory has %d servers, want the demo fleet's %d", len(servers), len(inventory.DemoFleet().Servers))
	}
	for _, s := range servers {
		if s.InstanceID != fleet.Instances[s.Name] || s.State != anyops.ServerRunning {
			t.Errorf("server %s: instance %s %s, cloud has %s", s.Name, s.InstanceID, s.State, fleet.Instances[s.Name])
		}
	}
	if _, err := tc.ScheduleClient().GetHandle(ctx, FleetSyncScheduleID).Describe(ctx); err != nil {
		t.Errorf("schedule %s: %v", FleetSyncScheduleID, err)
	}

	desc, err := tc.DescribeWorkflowExecution(ctx, workflows.NFSWatchWorkflowID(inventory.DemoFileServer), "")
	if err != nil || desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("NFS watch of %s: %v, %v; want it running", inventory.DemoFileServer, desc.GetWorkflowExecutionInfo().GetStatus(), err)
	}
	watchRun := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()

	again, err := EnsureDemoFleet(ctx, tc, timing, watch)
	if err != nil {
		t.Fatal(err)
	}
	for name, id := range fleet.Instances {
		if again.Instances[name] != id {
			t.Errorf("second EnsureDemoFleet: %s is %s, was %s", name, again.Instances[name], id)
		}
	}
	if desc, err := tc.DescribeWorkflowExecution(ctx, workflows.NFSWatchWorkflowID(inventory.DemoFileServer), ""); err != nil ||
		desc.GetWorkflowExecutionInfo().GetExecution().GetRunId() != watchRun {
		t.Errorf("after the second EnsureDemoFleet the watch is %v (%v), want the first run %s", desc.GetWorkflowExecutionInfo().GetExecution(), err, watchRun)
	}
}
