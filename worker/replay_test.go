package worker

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/workflows"
)

// recordedHistories are the histories the replay tests need, one per workflow and main path,
// in testenv.HistoriesDir. `make record-histories` records them from real runs on a dev
// server: TestRecordHistories below, the console's in workflows/console_lifecycle_test.go,
// the promotion's in workflows/fleet_sync_test.go, the recoveries' in
// workflows/failover_cloudsim_test.go, the release's and storage change's in their cloudsim
// tests, the drill's in cmd/anyops/drill_test.go and the patch's in integration/patch_test.go.
var recordedHistories = []string{
	"demo-fleet",           // DemoFleet builds the demo fleet in cloudsim
	"build-cluster",        // its BuildCluster child
	"build-server",         // BuildCluster's BuildServer child of the file server
	"fleet-sync",           // FleetSync reads it into the empty inventory
	"fleet-sync-promotion", // FleetSync after a promotion: it retags the volumes after the reconcile
	// The same, recorded before that change (workflow.GetVersion's DefaultVersion): it tagged
	// before the reconcile. docs/workflow-changes.md.
	"fleet-sync-promotion-v0",
	"nfs-watch",            // the file server's NFS watch FleetSync starts, stopped after a round
	"fleet-audit",          // FleetAudit counts it
	"scheduled-fleet-sync", // a tick of the schedule, FleetSync as its child
	"console-lifecycle",    // a console opened, then closed by its user
	"failover-promote",     // FileServerFailover: hardware failure, the hot backup promoted
	"failover-july-2014",   // FileServerFailover: backup resyncing, corrupt boot disk, a new server
	"backup-rebuild",       // BackupRebuild of a failed backup server
	"server-replace",       // ServerReplace of a failed web server
	"release",              // Release of live beside itself: built, handed over, the old cluster retired
	// The same, recorded before the maintenance hold and the simulated-time incrementals
	// (GetVersion "release-maintenance-hold", "release-incrementals-sim-time": DefaultVersion).
	"release-v0",
	"storage-change-in-place", // StorageChange of the backup's volumes by Elastic Volumes
	"seed-replica",            // SeedReplica: a new backup seeded from snapshots (StorageChange's child)
	"drill-hot-backup",        // Drill: the hot-backup scenario through the real alarm path (cmd/anyops)
	"fleet-patch",             // FleetPatch of Heartbleed over the demo fleet, the worker killed twice (integration)
}

// TestReplayRecordedHistories replays every recorded history against the workflows as the
// worker registers them: a change to a workflow that is not deterministic against runs
// already in flight (a command added, dropped or reordered without workflow.GetVersion)
// fails here. docs/workflow-changes.md says how to change a workflow safely.
func TestReplayRecordedHistories(t *testing.T) {
	for _, name := range recordedHistories {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(testenv.HistoriesDir(), name+".json")
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("recorded history missing (make record-histories): %v", err)
			}
			replayer := worker.NewWorkflowReplayer()
			for _, q := range TaskQueues {
				RegisterWorkflows(replayer, q)
			}
			if err := replayer.ReplayWorkflowHistoryFromJSONFile(discardLogger(), path); err != nil {
				t.Fatalf("replay of %s: %v", path, err)
			}
		})
	}
}

// TestEveryWorkflowHasARecordedHistory proves the replay tests cover every workflow type the
// worker registers: a new workflow without a recorded history fails here.
func TestEveryWorkflowHasARecordedHistory(t *testing.T) {
	recorded := map[string]bool{}
	for _, name := range recordedHistories {
		f, err := os.Open(filepath.Join(testenv.HistoriesDir(), name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		recorded[h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName()] = true
	}
	for _, q := range TaskQueues {
		var r registered
		Register(&r, q, Deps{})
		for _, wt := range r.types {
			if !recorded[wt] {
				t.Errorf("workflow %s (queue %s) has no recorded history: record its main path (docs/workflow-changes.md)", wt, q)
			}
		}
	}
}

// alteredFleetAudit is FleetAudit changed without workflow.GetVersion: it records its audit
// event before counting (the recorded history has the count first).
func alteredFleetAudit(ctx workflow.Context, in workflows.FleetAuditInput) (workflows.FleetAuditResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	var inv *activities.Inventory
	if err := workflow.ExecuteActivity(ctx, inv.RecordAudit, activities.AuditRecord{Actor: "anyops", Action: workflows.KindFleetAudit, Subject: "fleet"}).Get(ctx, nil); err != nil {
		return workflows.FleetAuditResult{}, err
	}
	var counts activities.FleetCounts
	err := workflow.ExecuteActivity(ctx, inv.CountFleet).Get(ctx, &counts)
	return workflows.FleetAuditResult{Counts: counts}, err
}

// TestReplayRejectsChangeWithoutGetVersion proves the replay test catches what it is for: a
// workflow registered under FleetAudit's name whose commands differ from the recorded run's
// fails the replay as nondeterministic.
func TestReplayRejectsChangeWithoutGetVersion(t *testing.T) {
	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(alteredFleetAudit, workflow.RegisterOptions{Name: "FleetAudit"})
	err := replayer.ReplayWorkflowHistoryFromJSONFile(discardLogger(), filepath.Join(testenv.HistoriesDir(), "fleet-audit.json"))
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "nondetermin") {
		t.Fatalf("replay of FleetAudit's history against a reordered FleetAudit = %v, want a nondeterminism error", err)
	}
}

func discardLogger() tlog.Logger { return tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)) }

// TestRecordHistories runs the control workflows' main paths on a dev server of its own, with
// the real worker, cloudsim and a SQLite inventory, and records their histories. It runs only
// under `make record-histories` (ANYOPS_RECORD_HISTORIES=1).
func TestRecordHistories(t *testing.T) {
	if !testenv.Recording() {
		t.Skip("records histories only under make record-histories (" + testenv.RecordHistoriesEnv + "=1)")
	}
	srv := testenv.StartTemporal(t)
	tc, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close) // after the worker has stopped
	clients, store := cloudAndInventory(t)
	runUntilTestEnds(t, tc, clients, store)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	timing := workflows.FleetTiming{PollInterval: 20 * time.Millisecond, HeartbeatTimeout: 5 * time.Second}
	watch := workflows.NFSWatchTiming{Interval: time.Hour} // one round is enough here
	if _, err := EnsureDemoFleet(ctx, tc, timing, watch); err != nil {
		t.Fatal(err)
	}
	testenv.RecordHistory(t, tc, workflows.DemoFleetWorkflowID, "demo-fleet")
	testenv.RecordHistory(t, tc, workflows.BuildClusterWorkflowID(inventory.DemoCluster), "build-cluster")
	testenv.RecordHistory(t, tc, workflows.BuildServerWorkflowID(inventory.DemoFileServer), "build-server")
	testenv.RecordHistory(t, tc, workflows.FleetSyncWorkflowID, "fleet-sync")
	// The watch runs until stopped; its history up to the stop is what a new worker replays.
	watchID := workflows.NFSWatchWorkflowID(inventory.DemoFileServer)
	if err := tc.TerminateWorkflow(ctx, watchID, "", "recorded"); err != nil {
		t.Fatal(err)
	}
	testenv.RecordHistory(t, tc, watchID, "nfs-watch")

	run := func(id, workflowType string, input any) {
		t.Helper()
		r, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: TaskQueueControl}, workflowType, input)
		if err == nil {
			err = r.Get(ctx, nil)
		}
		if err != nil {
			t.Fatalf("%s: %v", workflowType, err)
		}
	}
	run(workflows.FleetAuditWorkflowID, "FleetAudit", workflows.FleetAuditInput{Reason: "recorded for the replay tests"})
	testenv.RecordHistory(t, tc, workflows.FleetAuditWorkflowID, "fleet-audit")
	run("fleet-sync-tick-recorded", workflows.ScheduledFleetSyncWorkflowType, workflows.FleetSyncInput{Timing: timing, RequestedBy: "schedule"})
	testenv.RecordHistory(t, tc, "fleet-sync-tick-recorded", "scheduled-fleet-sync")
}
