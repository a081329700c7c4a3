package worker

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/alarms"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/workflows"
)

// TestNFSWatchDetectsAFailedFileServer runs the probe end to end on the real Temporal dev
// server and cloudsim: the worker builds the demo fleet (its clients mount the file service by
// name) and starts the file server's NFS watch; while the file server serves, the watch raises
// nothing. Then the file server's hardware fails: its clients' mounts go stale and hang, the
// watch's rounds fail, and it raises a probe alarm through the worker's alarm intake, which
// opens the incident and starts failover/live-file. It proves the probe reaches the intake on
// its own (no CloudWatch, no fleet sync), and logs the detection time in simulated seconds.
func TestNFSWatchDetectsAFailedFileServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	tc := testenv.TemporalClient(t)
	sim, endpoint := cloudsim.NewTestServer(t, cloudsim.Config{})
	clients, err := activities.NewClients(ctx, config.AWS{Region: "us-east-1", Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	store, err := inventory.Open(ctx, inventory.DriverSQLite, filepath.Join(t.TempDir(), "inv.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	// The recoveries the probe starts go to a queue nobody serves: this test is about
	// detection, and the failover stays where the intake left it.
	recoveries := "probe-test-" + uuid.NewString()
	intake := &alarms.Intake{Store: store, Temporal: tc, Logger: slog.New(slog.DiscardHandler), TaskQueue: recoveries}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(runCtx, Config{Client: tc, Deps: Deps{Store: store, AWS: clients, Alarms: intake, CommandPoll: 20 * time.Millisecond},
			Logger: slog.New(slog.DiscardHandler)})
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	watchID := workflows.NFSWatchWorkflowID(inventory.DemoFileServer)
	failoverID := anyops.FailoverWorkflowID(inventory.DemoFileServer)
	t.Cleanup(func() {
		for _, id := range []string{watchID, failoverID} {
			_ = tc.TerminateWorkflow(context.Background(), id, "", "test ended")
		}
	})

	// What `anyops dev` runs at start (EnsureDemoFleet), under ids of this test's own: the
	// package's other tests build their demo fleets in other cloudsims.
	timing := workflows.FleetTiming{PollInterval: 20 * time.Millisecond, HeartbeatTimeout: 10 * time.Second}
	watch := workflows.NFSWatchTiming{Interval: 200 * time.Millisecond, ProbeTimeout: 5 * time.Second, FailuresToAlarm: 3}
	for _, run := range []struct {
		kind  string
		input any
	}{
		{workflows.KindDemoFleet, workflows.DemoFleetInput{Timing: timing, RequestedBy: "test"}},
		{workflows.KindFleetSync, workflows.FleetSyncInput{Timing: timing, RequestedBy: "test", NFSWatch: &watch}},
	} {
		kind, _ := workflows.LookupKind(run.kind)
		r, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: run.kind + "-" + uuid.NewString(), TaskQueue: kind.TaskQueue}, kind.WorkflowType, run.input)
		if err == nil {
			err = r.Get(ctx, nil)
		}
		if err != nil {
			t.Fatalf("%s: %v", run.kind, err)
		}
	}
	file, err := store.GetServer(ctx, inventory.DemoFileServer)
	if err != nil {
		t.Fatal(err)
	}

	// Healthy rounds first: the watch says the file server serves, and raises nothing.
	waitFor(t, time.Minute, "the watch to see the file server serve", func() bool {
		st := watchStatus(ctx, t, watchID)
		return st != nil && strings.Contains(st.Message, "serves")
	})
	if incs, _, _ := store.ListIncidents(ctx, inventory.IncidentFilter{}); len(incs) != 0 {
		t.Fatalf("%d incidents while the file server serves", len(incs))
	}

	faultAt := sim.Now()
	if _, err := sim.InjectFault(cloudsim.Fault{Type: cloudsim.FaultHardwareFailure, InstanceID: file.InstanceID}); err != nil {
		t.Fatal(err)
	}
	var inc inventory.Incident
	waitFor(t, 2*time.Minute, "the probe's alarm to open the incident", func() bool {
		incs, _, err := store.ListIncidents(ctx, inventory.IncidentFilter{Server: inventory.DemoFileServer})
		if err != nil || len(incs) == 0 {
			return false
		}
		inc, err = store.GetIncident(ctx, incs[0].ID)
		return err == nil && inc.RunID != ""
	})
	detected := sim.Now()
	var probe *inventory.IncidentEvent
	for i, ev := range inc.Timeline {
		if ev.Kind == inventory.IncidentEventAlarm && ev.Source == string(anyops.AlarmProbe) {
			probe = &inc.Timeline[i]
		}
	}
	if probe == nil || inc.WorkflowID != failoverID {
		t.Fatalf("incident %+v: want a probe alarm and the failover", inc)
	}
	desc, err := tc.DescribeWorkflowExecution(ctx, failoverID, inc.RunID)
	if err != nil || desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("failover after the probe alarm: %v, %v", desc.GetWorkflowExecutionInfo().GetStatus(), err)
	}
	t.Logf("probe alarm: %q; detected %.0f simulated seconds after the hardware failure (probe every %s real, speed %.0f)",
		probe.Message, detected.Sub(faultAt).Seconds(), watch.Interval, sim.Speed())
}

// watchStatus is the Status of a running workflow, nil when it cannot be asked yet.
func watchStatus(ctx context.Context, t *testing.T, id string) *workflows.Status {
	v, err := testenv.TemporalClient(t).QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	if err != nil {
		return nil
	}
	var st workflows.Status
	if v.Get(&st) != nil {
		return nil
	}
	return &st
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
