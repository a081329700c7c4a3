package workflows

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/inventory"
)

// demoStore opens a SQLite inventory in t.TempDir with the demo fleet loaded.
func demoStore(t *testing.T) *inventory.Store {
	t.Helper()
	ctx := context.Background()
	store, err := inventory.Open(ctx, inventory.DriverSQLite, filepath.Join(t.TempDir(), "inv.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if seeded, err := store.SeedDemoFleet(ctx); err != nil || !seeded {
		t.Fatalf("SeedDemoFleet = %v, %v", seeded, err)
	}
	return store
}

// TestFleetAuditCountsDemoFleet runs FleetAudit in the test environment with the real
// inventory activities on a SQLite store holding the demo fleet. It proves the result counts
// what DemoFleet holds (counted here from its rows, not by the store), that the audit event is
// recorded with the actor and reason, and that the Status query reports completion.
func TestFleetAuditCountsDemoFleet(t *testing.T) {
	store := demoStore(t)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(FleetAudit)
	env.RegisterActivity(&activities.Inventory{Store: store})

	env.ExecuteWorkflow(FleetAudit, FleetAuditInput{Reason: "test", RequestedBy: "api:operator"})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("FleetAudit did not complete: %v", env.GetWorkflowError())
	}
	var res FleetAuditResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}

	fleet := inventory.DemoFleet()
	byRole := map[string]int{}
	for _, s := range fleet.Servers {
		byRole[string(s.Role)]++
	}
	byKind := map[string]int{}
	for _, v := range fleet.Volumes {
		byKind[string(v.Kind)]++
	}
	for role, n := range byRole {
		if res.Counts.ServersByRole[role] != n {
			t.Errorf("servers with role %s = %d, demo fleet has %d", role, res.Counts.ServersByRole[role], n)
		}
	}
	for kind, n := range byKind {
		if res.Counts.VolumesByKind[kind] != n {
			t.Errorf("volumes of kind %s = %d, demo fleet has %d", kind, res.Counts.VolumesByKind[kind], n)
		}
	}
	if res.Counts.Totals.Servers != len(fleet.Servers) || res.Counts.Totals.Volumes != len(fleet.Volumes) ||
		res.Counts.Totals.Replicas != len(fleet.Replicas) || res.Counts.Totals.Zones != len(fleet.Zones) {
		t.Errorf("totals %+v, demo fleet has %d servers, %d volumes, %d replicas, %d zones",
			res.Counts.Totals, len(fleet.Servers), len(fleet.Volumes), len(fleet.Replicas), len(fleet.Zones))
	}
	if res.Summary != FleetAuditSummary(res.Counts) {
		t.Errorf("summary %q is not FleetAuditSummary of the counts", res.Summary)
	}

	events, _, err := store.ListAudit(context.Background(), inventory.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("%d audit events recorded, want 1", len(events))
	}
	ev := events[0]
	if ev.Actor != "api:operator" || ev.Action != KindFleetAudit || ev.Subject != "fleet" || ev.Summary["text"] != res.Summary || ev.Summary["reason"] != "test" {
		t.Errorf("audit event %+v does not record the audit", ev)
	}

	st := queryStatus(t, env)
	if st.Phase != PhaseDone || st.Progress != 1 || len(st.Steps) != 2 || st.Steps[0].State != StepDone || st.Steps[1].State != StepDone {
		t.Errorf("final status %+v, want phase done, progress 1, both steps done", st)
	}
}

// TestFleetAuditReportsFailedStep proves that when the inventory cannot be read (the database
// is closed) the workflow fails after its retries, records no audit event, and its Status
// names the failed step.
func TestFleetAuditReportsFailedStep(t *testing.T) {
	store := demoStore(t)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(FleetAudit)
	env.RegisterActivity(&activities.Inventory{Store: store})
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	env.ExecuteWorkflow(FleetAudit, FleetAuditInput{})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() == nil {
		t.Fatal("FleetAudit succeeded on a closed inventory")
	}
	st := queryStatus(t, env)
	if st.Phase != PhaseFailed || !strings.HasPrefix(st.Message, stepCountFleet+": ") || st.Steps[0].State != StepFailed || st.Steps[1].State != StepPending {
		t.Errorf("status %+v, want phase failed naming %s, that step failed and the next pending", st, stepCountFleet)
	}
	if st.Progress != 0 {
		t.Errorf("progress %v after the first step failed, want 0", st.Progress)
	}
}
