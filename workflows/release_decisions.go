package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// The decisions of a release: approve and abort, and the wait for an approval of the current
// plan.

func (r *release) registerDecisions(ctx workflow.Context) error {
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateApprove, func(ctx workflow.Context, d DecisionInput) (DecisionResult, error) {
		r.approved = &d
		r.event("plan %s approved by %s", d.PlanHash, d.By)
		return DecisionResult{Decision: UpdateApprove, Message: "plan " + d.PlanHash + " approved: the cutover goes ahead once the pre-stage is done"}, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d DecisionInput) error {
		switch {
		case r.in.DryRun:
			return refused("a dry run cuts nothing over")
		case r.plan.Hash == "":
			return refused("there is no plan yet")
		case d.PlanHash == "":
			return refused("an approval names the plan it approves: plan_hash %s", r.plan.Hash)
		case d.PlanHash != r.plan.Hash:
			return temporal.NewApplicationError(fmt.Sprintf("plan %s is stale: the current plan is %s; look at it and approve that one", d.PlanHash, r.plan.Hash), ErrStalePlan)
		case len(r.plan.Blockers) > 0:
			return refused("the plan has %d blockers: %s", len(r.plan.Blockers), r.plan.Blockers[0].Message)
		case r.maintenanceStarted():
			return refused("the cutover is under way")
		}
		return refuseApprove("release", r.abort, nil)
	}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateAbort, func(ctx workflow.Context, d DecisionInput) (DecisionResult, error) {
		r.abort = &d
		r.event("aborted by %s: %s", d.By, d.Reason)
		return DecisionResult{Decision: UpdateAbort, Message: "the release stops before the cutover; the live cluster keeps serving"}, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d DecisionInput) error {
		return refuseAbort("release", d, r.abort, func() error {
			if r.maintenanceStarted() {
				return refused("the cutover is under way: it completes or rolls back by itself")
			}
			return nil
		})
	}}); err != nil {
		return err
	}
	return r.locks.register(ctx)
}

func (r *release) maintenanceStarted() bool { return r.res.MaintenanceAt != nil }

// hold names the old cluster's servers the release holds in planned maintenance, so that
// their alarms are suppressed rather than start a failover (MemoMaintenance); none ends it.
func (r *release) hold(ctx workflow.Context, servers ...string) error {
	if !r.holds {
		return nil
	}
	return holdMaintenance(ctx, servers)
}

// oldClusterServers are the names of the old cluster's servers the release knows.
func (r *release) oldClusterServers() []string {
	names := []string{r.fileServer.Name}
	if r.backup.Name != "" {
		names = append(names, r.backup.Name)
	}
	for _, c := range r.clients {
		names = append(names, c.Name)
	}
	return names
}

// awaitApproval waits for the approval of the current plan (unless the policy needs none),
// planning again every PlanInterval and taking an incremental snapshot of each critical
// unreplicated volume every IncrementalInterval meanwhile. An approval of a plan that has
// changed since is not one: a new approval is needed.
func (r *release) awaitApproval(ctx workflow.Context) error {
	if r.policy.NoApproval {
		r.tracker.Skip(stepRelApproval, "the policy needs no approval")
		return r.replan(ctx)
	}
	r.tracker.Start(stepRelApproval, "waiting for the approval of plan "+r.plan.Hash)
	// The interval is the cloud's time; a run recorded before it was took it as the worker's.
	every := r.policy.IncrementalInterval
	if workflow.GetVersion(ctx, changeIncrementalsSimTime, workflow.DefaultVersion, 1) == 1 {
		every = r.workerDuration(every.Seconds())
	}
	lastIncr := workflow.Now(ctx)
	deadline := lastIncr.Add(r.timing.ApprovalTimeout)
	for {
		if err := r.replan(ctx); err != nil {
			return err
		}
		if r.abort != nil {
			return nil
		}
		if r.approved != nil && r.approved.PlanHash == r.plan.Hash && len(r.plan.Blockers) == 0 {
			break
		}
		if r.approved != nil {
			r.event("the approval of plan %s by %s no longer holds: the plan is %s now", r.approved.PlanHash, r.approved.By, r.plan.Hash)
			r.approved = nil
		}
		if !workflow.Now(ctx).Before(deadline) {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("no approval of the plan within %s: nothing was cut over; %s keeps serving", r.timing.ApprovalTimeout, r.in.Cluster), ErrApprovalTimeout, nil)
		}
		r.tracker.Start(stepRelApproval, fmt.Sprintf("waiting for the approval of plan %s (predicted downtime %.0f s)", r.plan.Hash, r.plan.PredictedDowntimeSeconds))
		if _, err := workflow.AwaitWithTimeout(ctx, r.timing.PlanInterval, func() bool { return r.approved != nil || r.abort != nil }); err != nil {
			return err
		}
		if workflow.Now(ctx).Sub(lastIncr) >= every {
			if err := r.incrementals(ctx, "incremental"); err != nil {
				return err
			}
			lastIncr = workflow.Now(ctx)
		}
	}
	r.tracker.Done(stepRelApproval, fmt.Sprintf("plan %s approved by %s", r.plan.Hash, r.approved.By))
	return nil
}
