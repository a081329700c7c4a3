package api

import (
	"context"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/alarms/snstest"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/workflows"
)

// TestAlarmOnAServerHeldInMaintenanceStartsNothing proves the maintenance hold: while the
// release of the cluster runs with the file server in its memo's hold (what Release writes
// when its window opens, workflows.MemoMaintenance), an alarm about that file server is
// suppressed — recorded once per delivery in the audit log against the release, no incident,
// no failover — and an alarm about a server the hold does not name (the backup) still starts
// its recovery. Once the release has ended, the same server's alarm starts the failover. On the
// code before the hold, the first alarm started failover/live-file.
func TestAlarmOnAServerHeldInMaintenanceStartsNothing(t *testing.T) {
	f := newAlarmFixture(t, inventory.DriverSQLite)
	ctx := context.Background()
	file, backup := f.inventoryServer(inventory.DemoFileServer), f.inventoryServer(inventory.DemoBackup)
	holder := anyops.ReleaseWorkflowID(inventory.DemoCluster)
	// A release in its window, on the fixture's queue that no worker serves: it stays running
	// with its hold for as long as the test needs.
	run, err := f.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: holder, TaskQueue: f.queue,
		Memo: map[string]any{workflows.MemoMaintenance: []string{inventory.DemoFileServer}}}, workflows.ReleaseWorkflowType,
		workflows.ReleaseInput{Cluster: inventory.DemoCluster, Version: "2"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.tc.TerminateWorkflow(context.Background(), holder, "", "test ended") })
	incidents := f.incidentCount()

	delivery := f.sns.Sign(f.sns.Notification(snstest.CloudWatchAlarm("alarm-system", "StatusCheckFailed_System", file.InstanceID, "ALARM")))
	for i := range 2 { // the second is SNS delivering the same message again
		held := f.postSNSAnswer(delivery)
		if held.Action != anyops.AlarmSuppressed || held.WorkflowID != holder || held.RunID != run.GetRunID() || held.IncidentID != 0 {
			t.Fatalf("delivery %d about the held file server: %+v, want suppressed by %s", i+1, held, holder)
		}
	}
	failover := anyops.FailoverWorkflowID(inventory.DemoFileServer)
	if runs := f.runsOf(failover); runs != 0 {
		t.Fatalf("%d runs of %s for a server in planned maintenance", runs, failover)
	}
	if n := f.incidentCount(); n != incidents {
		t.Fatalf("%d incidents, want %d: a suppressed alarm opens none", n, incidents)
	}
	events, _, err := f.store.ListAudit(ctx, inventory.Page{Limit: inventory.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	suppressed := 0
	for _, e := range events {
		if e.Action == "alarm.suppressed" && e.Subject == holder && e.Summary["server"] == inventory.DemoFileServer {
			suppressed++
		}
	}
	if suppressed != 1 {
		t.Fatalf("%d alarm.suppressed audit events by %s, want the one delivery once", suppressed, holder)
	}

	// A server the hold does not name: a fault, as ever.
	other := f.cloudWatchAlarm("StatusCheckFailed_System", backup.InstanceID, "ALARM")
	if other.Action != anyops.AlarmStarted || other.WorkflowID != anyops.BackupRebuildWorkflowID(inventory.DemoBackup) {
		t.Fatalf("alarm about the backup, not held: %+v, want its rebuild started", other)
	}

	// The release has ended: the hold with it.
	if err := f.tc.TerminateWorkflow(ctx, holder, run.GetRunID(), "test: the release ended"); err != nil {
		t.Fatal(err)
	}
	after := f.cloudWatchAlarm("StatusCheckFailed_Instance", file.InstanceID, "ALARM")
	if after.Action != anyops.AlarmStarted || after.WorkflowID != failover {
		t.Fatalf("alarm about the file server after the release: %+v, want %s started", after, failover)
	}
}
