package workflows

import "go.temporal.io/sdk/workflow"

// The failover's human decisions: approve, abort, override (updates with validators; the
// rules they share are in decisions.go).

func (w *failover) registerDecisions(ctx workflow.Context) error {
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateApprove, func(ctx workflow.Context, d DecisionInput) (DecisionResult, error) {
		w.approved = &d
		w.event(ctx, "cutover approved by %s", d.By)
		return DecisionResult{Decision: UpdateApprove, Message: "the first way ready to serve will be granted the cutover"}, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d DecisionInput) error {
		var refusal error
		switch {
		case !w.policy.ApproveCutover:
			refusal = refused("this failover's policy does not wait for approval: it cuts over by itself")
		case w.granted != "":
			refusal = refused("the cutover was granted to %s already", w.granted)
		case w.approved != nil:
			refusal = refused("the cutover was approved already by %s", w.approved.By)
		}
		return refuseApprove("failover", w.abort, refusal)
	}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateAbort, func(ctx workflow.Context, d DecisionInput) (DecisionResult, error) {
		w.abort = &d
		// Cancel the ways before the note below yields: a way that woke to the abort first
		// would clean up (stop the repaired primary again) as a loser of the cutover.
		if w.cancelRace != nil {
			w.cancelRace()
		}
		w.event(ctx, "aborted by %s: %s", d.By, d.Reason)
		return DecisionResult{Decision: UpdateAbort, Message: "the ways are cancelled and cleaned up; nothing takes the data over"}, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d DecisionInput) error {
		return refuseAbort("failover", d, w.abort, func() error {
			if w.granted != "" {
				return refused("the cutover was granted to %s: a takeover under way is not stopped half-way", w.granted)
			}
			return nil
		})
	}}); err != nil {
		return err
	}
	return w.locks.register(ctx)
}
