package worker

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/workflows"
)

// TestEnsureSchedulesIsIdempotent runs EnsureSchedules against the real dev server. It proves
// the fleet-sync schedule is created with a 2-minute interval, the skip overlap policy and a
// ScheduledFleetSync action on the control queue; and that calling it again succeeds and
// leaves the existing schedule alone (here: an operator's pause survives).
func TestEnsureSchedulesIsIdempotent(t *testing.T) {
	ctx := context.Background()
	tc := testenv.TemporalClient(t)
	if err := EnsureSchedules(ctx, tc, workflows.NFSWatchTiming{}); err != nil {
		t.Fatal(err)
	}
	h := tc.ScheduleClient().GetHandle(ctx, FleetSyncScheduleID)
	t.Cleanup(func() { _ = h.Delete(context.Background()) })

	d, err := h.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if iv := d.Schedule.Spec.Intervals; len(iv) != 1 || iv[0].Every != 2*time.Minute {
		t.Errorf("intervals %+v, want every 2m", iv)
	}
	if d.Schedule.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP {
		t.Errorf("overlap policy %v, want skip", d.Schedule.Policy.Overlap)
	}
	a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok || a.Workflow != workflows.ScheduledFleetSyncWorkflowType || a.TaskQueue != workflows.TaskQueueControl || a.ID != FleetSyncTickID {
		t.Errorf("action %+v, want %s with id %s on %s", d.Schedule.Action, workflows.ScheduledFleetSyncWorkflowType, FleetSyncTickID, workflows.TaskQueueControl)
	}

	if err := h.Pause(ctx, client.SchedulePauseOptions{Note: "operator: maintenance"}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureSchedules(ctx, tc, workflows.NFSWatchTiming{}); err != nil {
		t.Fatalf("EnsureSchedules on an existing schedule: %v", err)
	}
	d, err = h.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Schedule.State.Paused {
		t.Errorf("EnsureSchedules unpaused or replaced the existing schedule: state %+v", d.Schedule.State)
	}
}

// registered records the workflow types Register registers on one queue.
type registered struct {
	worker.Registry // nil: only the methods below are called
	types           []string
}

func (r *registered) RegisterWorkflowWithOptions(_ any, o workflow.RegisterOptions) {
	r.types = append(r.types, o.Name)
}
func (r *registered) RegisterActivity(any) {}

// TestSchedulesStartRegisteredWorkflows proves every schedule starts a workflow type the
// worker registers on the schedule's task queue, so a renamed workflow cannot leave a schedule
// starting nothing.
func TestSchedulesStartRegisteredWorkflows(t *testing.T) {
	for _, s := range Schedules(workflows.NFSWatchTiming{}) {
		a := s.Options.Action.(*client.ScheduleWorkflowAction)
		var r registered
		Register(&r, a.TaskQueue, Deps{})
		if !slices.Contains(r.types, a.Workflow.(string)) {
			t.Errorf("schedule %s starts %v on %s, which registers only %v", s.ID, a.Workflow, a.TaskQueue, r.types)
		}
	}
}

// TestEnsureSchedulesUpgradesAnOldAction proves a fleet-sync schedule an older release created,
// starting FleetSync itself under ids of its own, is brought to the ScheduledFleetSync action
// by EnsureSchedules, keeping its pause.
func TestEnsureSchedulesUpgradesAnOldAction(t *testing.T) {
	ctx := context.Background()
	tc := testenv.TemporalClient(t)
	old := Schedules(workflows.NFSWatchTiming{})[0].Options
	old.Action = &client.ScheduleWorkflowAction{ID: workflows.FleetSyncWorkflowID, Workflow: "FleetSync", TaskQueue: workflows.TaskQueueControl}
	old.Paused = true
	h, err := tc.ScheduleClient().Create(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Delete(context.Background()) })
	if err := EnsureSchedules(ctx, tc, workflows.NFSWatchTiming{}); err != nil {
		t.Fatal(err)
	}
	d, err := h.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction); !ok || a.Workflow != workflows.ScheduledFleetSyncWorkflowType || a.ID != FleetSyncTickID {
		t.Errorf("action after EnsureSchedules %+v, want %s", d.Schedule.Action, workflows.ScheduledFleetSyncWorkflowType)
	}
	if !d.Schedule.State.Paused {
		t.Error("the upgrade unpaused the schedule")
	}
}

// TestEnsureSchedulesTakesChangedProbeSettings proves a fleet-sync schedule whose syncs start
// NFS watches with other settings than this worker's (its --nfs-probe-* changed) gets this
// worker's, keeping its pause, and that ensuring again with the same settings changes nothing.
func TestEnsureSchedulesTakesChangedProbeSettings(t *testing.T) {
	ctx := context.Background()
	tc := testenv.TemporalClient(t)
	old := Schedules(workflows.NFSWatchTiming{Interval: time.Minute})[0].Options
	old.Paused = true
	h, err := tc.ScheduleClient().Create(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Delete(context.Background()) })
	want := workflows.NFSWatchTiming{Interval: 5 * time.Second, ProbeTimeout: 2 * time.Second, FailuresToAlarm: 2}
	if err := EnsureSchedules(ctx, tc, want); err != nil {
		t.Fatal(err)
	}
	d, err := h.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var in workflows.FleetSyncInput
	a := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	if err := converter.GetDefaultDataConverter().FromPayload(a.Args[0].(*commonpb.Payload), &in); err != nil {
		t.Fatal(err)
	}
	if in.NFSWatch == nil || *in.NFSWatch != want || !d.Schedule.State.Paused {
		t.Fatalf("schedule's sync input %+v (paused %v), want the probe settings %+v and the pause kept", in.NFSWatch, d.Schedule.State.Paused, want)
	}
	updated := d.Info.LastUpdateAt
	if err := EnsureSchedules(ctx, tc, want); err != nil {
		t.Fatal(err)
	}
	if d, err = h.Describe(ctx); err != nil || !d.Info.LastUpdateAt.Equal(updated) {
		t.Fatalf("ensuring the same settings again updated the schedule (%v, %v → %v)", err, updated, d.Info.LastUpdateAt)
	}
}

// TestScheduledAndAPIFleetSyncsNeverOverlap runs the worker against the real dev server and
// cloudsim with the fleet-sync schedule in place. A FleetSync is started as the API starts
// one and, while it waits for the worker, the schedule is triggered. It proves that every
// FleetSync that ran did so under the one business key fleet-sync and that no two ran at the
// same time: the schedule's tick skipped (or followed) the API's run instead of reconciling
// beside it.
func TestScheduledAndAPIFleetSyncsNeverOverlap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	tc := testenv.TemporalClient(t)
	clients, store := cloudAndInventory(t)
	if err := EnsureSchedules(ctx, tc, workflows.NFSWatchTiming{}); err != nil {
		t.Fatal(err)
	}
	h := tc.ScheduleClient().GetHandle(ctx, FleetSyncScheduleID)
	t.Cleanup(func() { _ = h.Delete(context.Background()) })

	// The API's start, with no worker yet: the run waits.
	kind, _ := workflows.LookupKind(workflows.KindFleetSync)
	start, err := kind.Prepare(nil, "operator")
	if err != nil {
		t.Fatal(err)
	}
	apiRun, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: start.ID, TaskQueue: kind.TaskQueue, WorkflowExecutionTimeout: kind.ExecutionTimeout,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, kind.WorkflowType, start.Input)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	var tick *client.ScheduleWorkflowExecution
	for {
		d, err := h.Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(d.Info.RecentActions); n > 0 {
			tick = d.Info.RecentActions[n-1].StartWorkflowResult
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the triggered schedule started nothing")
		}
		time.Sleep(50 * time.Millisecond)
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(runCtx, Config{Client: tc, Deps: Deps{Store: store, AWS: clients}, Logger: slog.New(slog.DiscardHandler),
			TaskQueues: []string{TaskQueueControl}})
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	if err := apiRun.Get(ctx, nil); err != nil {
		t.Fatalf("the API's FleetSync: %v", err)
	}
	var tickResult any
	if err := tc.GetWorkflow(ctx, tick.WorkflowID, tick.FirstExecutionRunID).Get(ctx, &tickResult); err != nil {
		t.Fatalf("the schedule's tick %s: %v", tick.WorkflowID, err)
	}
	t.Logf("tick %s: %v", tick.WorkflowID, tickResult)

	// Every FleetSync since the test began, from visibility (which catches up shortly).
	type span struct {
		id           string
		start, close time.Time
	}
	var spans []span
	for {
		spans = spans[:0]
		open := 0
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "WorkflowType = 'FleetSync'"})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.Executions {
			if e.GetStartTime().AsTime().Before(began) {
				continue
			}
			if e.GetCloseTime() == nil {
				open++
				continue
			}
			spans = append(spans, span{e.GetExecution().GetWorkflowId(), e.GetStartTime().AsTime(), e.GetCloseTime().AsTime()})
		}
		if open == 0 && len(spans) > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("FleetSyncs still open in visibility: %d", open)
		}
		time.Sleep(100 * time.Millisecond)
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start.Before(spans[j].start) })
	for i, s := range spans {
		if s.id != workflows.FleetSyncWorkflowID {
			t.Errorf("a FleetSync ran as %s, not under the business key %s", s.id, workflows.FleetSyncWorkflowID)
		}
		if i > 0 && s.start.Before(spans[i-1].close) {
			t.Errorf("%s (%s–%s) overlapped %s (%s–%s)", s.id, s.start.Format(time.StampMilli), s.close.Format(time.StampMilli),
				spans[i-1].id, spans[i-1].start.Format(time.StampMilli), spans[i-1].close.Format(time.StampMilli))
		}
	}
}
