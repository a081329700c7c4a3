package workflows

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
}
