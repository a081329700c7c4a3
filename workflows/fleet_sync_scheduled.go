package workflows

import (
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// ScheduledFleetSyncWorkflowType is the workflow the fleet-sync schedule starts.
const ScheduledFleetSyncWorkflowType = "ScheduledFleetSync"

// ScheduledFleetSyncResult is what one tick of the schedule did.
type ScheduledFleetSyncResult struct {
	// Skipped: a reconcile was running already under FleetSyncWorkflowID (an operator's
	// through the API, or dev's), so this tick started none.
	Skipped bool             `json:"skipped,omitempty"`
	Sync    *FleetSyncResult `json:"sync,omitempty"`
}

const stepStartSync = "start-fleet-sync"

// ScheduledFleetSync is one tick of the fleet-sync schedule. Temporal gives a schedule's runs
// ids of their own ("<action id>-<time>"), so a schedule cannot start FleetSync under its
// business key; this workflow does, as a child with the id FleetSyncWorkflowID. While a
// FleetSync runs under that id the child start is refused and the tick is skipped; an API
// request while the tick's FleetSync runs joins it. So there is one reconcile at a time.
func ScheduledFleetSync(ctx workflow.Context, in FleetSyncInput) (ScheduledFleetSyncResult, error) {
	tracker, err := NewTracker(ctx, stepStartSync)
	if err != nil {
		return ScheduledFleetSyncResult{}, err
	}
	kind, _ := LookupKind(KindFleetSync)
	childCtx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:               FleetSyncWorkflowID,
		TaskQueue:                kind.TaskQueue,
		WorkflowExecutionTimeout: kind.ExecutionTimeout,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		// The reconcile is FleetSync's: it runs to its end whatever becomes of the tick.
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
	})
	tracker.Start(stepStartSync, "starting "+FleetSyncWorkflowID)
	child := workflow.ExecuteChildWorkflow(childCtx, kind.WorkflowType, in)
	if err := child.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		var running *temporal.ChildWorkflowExecutionAlreadyStartedError
		if errors.As(err, &running) {
			tracker.Done(stepStartSync, FleetSyncWorkflowID+" is running already: skipped")
			tracker.Finish("skipped: a reconcile was running")
			return ScheduledFleetSyncResult{Skipped: true}, nil
		}
		tracker.Fail(stepStartSync, err)
		return ScheduledFleetSyncResult{}, err
	}
	var sync FleetSyncResult
	if err := child.Get(ctx, &sync); err != nil {
		tracker.Fail(stepStartSync, err)
		return ScheduledFleetSyncResult{}, err
	}
	tracker.Done(stepStartSync, sync.Summary)
	tracker.Finish(fmt.Sprintf("%s: %s", FleetSyncWorkflowID, sync.Summary))
	return ScheduledFleetSyncResult{Sync: &sync}, nil
}
