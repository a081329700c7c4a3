package worker

import (
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/workflows"
)

// TestEnsureSchedulesIsIdempotent runs EnsureSchedules against the real dev server. It proves
// the fleet-sync schedule is created with a 2-minute interval, the skip overlap policy and a
// FleetSync action on the control queue; and that calling it again succeeds and leaves the
// existing schedule alone (here: an operator's pause survives).
func TestEnsureSchedulesIsIdempotent(t *testing.T) {
	ctx := context.Background()
	tc := testenv.TemporalClient(t)
	if err := EnsureSchedules(ctx, tc); err != nil {
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
	if !ok || a.Workflow != "FleetSync" || a.TaskQueue != workflows.TaskQueueControl || a.ID != workflows.FleetSyncWorkflowID {
		t.Errorf("action %+v, want FleetSync with id %s on %s", d.Schedule.Action, workflows.FleetSyncWorkflowID, workflows.TaskQueueControl)
	}

	if err := h.Pause(ctx, client.SchedulePauseOptions{Note: "operator: maintenance"}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureSchedules(ctx, tc); err != nil {
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

// TestSchedulesNameRegisteredKinds proves every schedule starts a workflow type some kind
// registers, so a renamed workflow cannot leave a schedule starting nothing.
func TestSchedulesNameRegisteredKinds(t *testing.T) {
	for _, s := range Schedules() {
		a := s.Options.Action.(*client.ScheduleWorkflowAction)
		k, ok := workflows.KindOfWorkflowType(a.Workflow.(string))
		if !ok || k.TaskQueue != a.TaskQueue {
			t.Errorf("schedule %s starts %v on %s: no such kind on that queue", s.ID, a.Workflow, a.TaskQueue)
		}
	}
}
