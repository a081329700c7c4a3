package workflows

import "go.temporal.io/sdk/workflow"

// Human decisions are Temporal updates with validators (DESIGN.md §3): the API's
// POST /v1/operations/{id}/approve|abort|override sends the update of that name with a
// DecisionInput; the workflow's validator decides whether it applies now.
const (
	UpdateApprove  = "approve"
	UpdateAbort    = "abort"
	UpdateOverride = "override"
)

// DecisionInput is the argument of the approve, abort and override updates.
type DecisionInput struct {
	// By is who decided, as the API authenticated them ("api:operator").
	By string `json:"by"`
	// Reason says why; the API requires it for abort and override.
	Reason string `json:"reason,omitempty"`
	// Interlock names the interlock an override passes.
	Interlock string `json:"interlock,omitempty"`
	// PlanHash names the plan an approval approves (a release's: a changed plan needs a new
	// approval).
	PlanHash string `json:"plan_hash,omitempty"`
}

// decisionsAnswered waits, as a run ends, until every decision's handler has finished: a
// handler that audits or notes the incident after its effect lets the run go on, and a run
// that closed first would leave the person who decided without an answer. Deferred first
// thing by every workflow that takes decisions.
func decisionsAnswered(ctx workflow.Context) {
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}
