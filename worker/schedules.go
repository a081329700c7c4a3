package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops/workflows"
)

// FleetSyncScheduleID is the Temporal schedule that runs FleetSync.
const FleetSyncScheduleID = "fleet-sync-every-2m"

// FleetSyncInterval is how often the schedule runs FleetSync: drift (an impaired instance, a
// volume someone detached by hand) shows in the inventory within this long.
const FleetSyncInterval = 2 * time.Minute

// Schedule is one schedule EnsureSchedules keeps.
type Schedule struct {
	ID      string
	Options client.ScheduleOptions
}

// FleetSyncTickID is the workflow id the fleet-sync schedule's ticks start from; Temporal adds
// the tick's time to it.
const FleetSyncTickID = "fleet-sync-tick"

// Schedules returns the schedules Anyops runs. The fleet-sync schedule starts
// ScheduledFleetSync ("fleet-sync-tick-<time>"), which starts FleetSync under its business key
// fleet-sync, or skips the tick when a FleetSync already runs there (one the API started): one
// reconcile at a time. The skip overlap policy keeps two ticks from running at once. Each
// tick's FleetSync ensures an NFS watch with watch's timing on every file server.
func Schedules(watch workflows.NFSWatchTiming) []Schedule {
	kind, _ := workflows.LookupKind(workflows.KindFleetSync)
	return []Schedule{{
		ID: FleetSyncScheduleID,
		Options: client.ScheduleOptions{
			ID:   FleetSyncScheduleID,
			Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: FleetSyncInterval}}},
			Action: &client.ScheduleWorkflowAction{
				ID:                       FleetSyncTickID,
				Workflow:                 workflows.ScheduledFleetSyncWorkflowType,
				TaskQueue:                kind.TaskQueue,
				Args:                     []any{workflows.FleetSyncInput{RequestedBy: "schedule:" + FleetSyncScheduleID, NFSWatch: &watch}},
				WorkflowExecutionTimeout: kind.ExecutionTimeout,
			},
			Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			Note:    "created by anyops: reconcile the inventory with the cloud",
		},
	}}
}

// EnsureSchedules creates every schedule of Schedules(watch) that does not exist yet. A
// schedule that exists is left as it is (an operator may have paused it), so calling this at
// every start of every process is safe — except that a schedule whose action differs from this
// binary's (another workflow type, one an older release created, or other arguments, such as a
// changed NFS probe setting) gets this binary's action, so that its ticks keep to one business
// key and to the configured probe.
func EnsureSchedules(ctx context.Context, c client.Client, watch workflows.NFSWatchTiming) error {
	for _, s := range Schedules(watch) {
		_, err := c.ScheduleClient().Create(ctx, s.Options)
		if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
			err = updateAction(ctx, c.ScheduleClient().GetHandle(ctx, s.ID), s.Options.Action.(*client.ScheduleWorkflowAction))
		}
		if err != nil {
			return fmt.Errorf("schedule %s: %w", s.ID, err)
		}
	}
	return nil
}

// updateAction replaces the action of an existing schedule when it starts another workflow
// type than want or with other arguments, leaving its state (paused or not) and spec alone.
func updateAction(ctx context.Context, h client.ScheduleHandle, want *client.ScheduleWorkflowAction) error {
	return h.Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			if a, ok := in.Description.Schedule.Action.(*client.ScheduleWorkflowAction); ok && a.Workflow == want.Workflow && sameArgs(a.Args, want.Args) {
				return nil, temporal.ErrSkipScheduleUpdate
			}
			in.Description.Schedule.Action = want
			return &client.ScheduleUpdate{Schedule: &in.Description.Schedule}, nil
		},
	})
}

// sameArgs reports whether a described action's arguments (payloads) encode as want's do.
func sameArgs(described, want []any) bool {
	if len(described) != len(want) {
		return false
	}
	dc := converter.GetDefaultDataConverter()
	for i, d := range described {
		p, ok := d.(*commonpb.Payload)
		w, err := dc.ToPayload(want[i])
		if !ok || err != nil || !bytes.Equal(p.GetData(), w.GetData()) {
			return false
		}
	}
	return true
}

// EnsureDemoFleet is what `anyops dev` runs once its worker is up: it builds the demo fleet in
// the cloud (DemoFleet, joining a run already under way; a later run finds everything the
// first created), fills the inventory from the cloud (FleetSync, which starts the file
// servers' NFS watches with watch's timing), and ensures the schedules. It blocks until all
// three are done: about a simulated minute of instance boots.
func EnsureDemoFleet(ctx context.Context, c client.Client, timing workflows.FleetTiming, watch workflows.NFSWatchTiming) (workflows.DemoFleetResult, error) {
	var fleet workflows.DemoFleetResult
	// The demo fleet is built once per Temporal database: a completed build is read back, not
	// repeated (a fault injected since, say an impaired instance, must not fail a restart).
	if err := runJoining(ctx, c, workflows.KindDemoFleet, workflows.DemoFleetWorkflowID,
		enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		workflows.DemoFleetInput{Timing: timing, RequestedBy: "anyops"}, &fleet); err != nil {
		return fleet, err
	}
	var sync workflows.FleetSyncResult
	if err := runJoining(ctx, c, workflows.KindFleetSync, workflows.FleetSyncWorkflowID,
		enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		workflows.FleetSyncInput{Timing: timing, RequestedBy: "anyops", NFSWatch: &watch}, &sync); err != nil {
		return fleet, err
	}
	return fleet, EnsureSchedules(ctx, c, watch)
}

// runJoining starts the kind's workflow under id, or joins the one running under it, and
// waits for its result. When reuse refuses a new run after a closed one, it reads the result
// of that closed run instead.
func runJoining(ctx context.Context, c client.Client, kindName, id string, reuse enumspb.WorkflowIdReusePolicy, input, result any) error {
	kind, ok := workflows.LookupKind(kindName)
	if !ok {
		return fmt.Errorf("kind %s is not registered", kindName)
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                kind.TaskQueue,
		WorkflowExecutionTimeout: kind.ExecutionTimeout,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    reuse,
	}, kind.WorkflowType, input)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		run, err = c.GetWorkflow(ctx, id, ""), nil
	}
	if err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	if err := run.Get(ctx, result); err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	return nil
}
