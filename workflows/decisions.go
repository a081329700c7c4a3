package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
)

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

// DecisionResult is what a decision update returns.
type DecisionResult struct {
	Decision string `json:"decision"`
	Message  string `json:"message"`
}

// decisionsAnswered waits, as a run ends, until every decision's handler has finished: a
// handler that audits or notes the incident after its effect lets the run go on, and a run
// that closed first would leave the person who decided without an answer. Deferred first
// thing by every workflow that takes decisions.
func decisionsAnswered(ctx workflow.Context) {
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}

// The validators' rules every workflow that takes a decision shares; what differs (when its
// approve or abort comes too late or too early) is the workflow's refusal, checked in between.

// refused is a decision's refusal by a validator: the API answers it 409 with the message.
func refused(format string, args ...any) error {
	return temporal.NewApplicationError(fmt.Sprintf(format, args...), anyops.ECONFLICT)
}

// refuseApprove validates an approve: the workflow's refusal first (nil: none), then an
// approval after an abort (aborted is the abort taken, nil for none) is refused; what names
// the operation in the message ("failover", "release").
func refuseApprove(what string, aborted *DecisionInput, refusal error) error {
	switch {
	case refusal != nil:
		return refusal
	case aborted != nil:
		return refused("the %s was aborted", what)
	}
	return nil
}

// refuseAbort validates an abort: it says why; then the workflow's refusal (nil: none); then
// a second abort is refused (aborted is the abort taken, nil for none).
func refuseAbort(what string, d DecisionInput, aborted *DecisionInput, refusal func() error) error {
	if strings.TrimSpace(d.Reason) == "" {
		return refused("an abort needs a reason")
	}
	if refusal != nil {
		if err := refusal(); err != nil {
			return err
		}
	}
	if aborted != nil {
		return refused("the %s was aborted already by %s", what, aborted.By)
	}
	return nil
}

// refuseOverride validates an override: it names a known interlock, says who and why, and
// the interlock holds something up now (blocking, Tracker.Blocking).
func refuseOverride(d DecisionInput, blocking func(interlock string) bool) error {
	if _, err := anyops.Parse("interlock", d.Interlock, anyops.Interlocks); err != nil {
		return refused("%s", anyops.ErrorMessage(err))
	}
	if strings.TrimSpace(d.Reason) == "" || d.By == "" {
		return refused("an override needs who and why")
	}
	if !blocking(d.Interlock) {
		return refused("interlock %s holds nothing up now", d.Interlock)
	}
	return nil
}
